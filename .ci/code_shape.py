"""Fail when code under apps/ outgrows what one person can read at once (issue 17): a module
over 500 lines or a function over 60 (migrations aside). Complexity is ruff's C901.

Usage: python .ci/code_shape.py [folder ...]   (default: apps)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def problems(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{path}: {lines} lines (at most {MAX_MODULE_LINES}: split it by concern)")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f"{path}:{node.lineno}: {node.name}() is {length} lines "
                        f"(at most {MAX_FUNCTION_LINES}: name its steps)"
                    )
    return found


def main(argv: list[str]) -> int:
    found = [p for folder in (argv or ["apps"]) for p in problems(Path(folder))]
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print("code shape: every module <= 500 lines, every function <= 60 lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

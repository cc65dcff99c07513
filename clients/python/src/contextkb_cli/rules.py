"""`contextkb rules`: write (or `--check`) the rule files the server renders.

The server (`GET /api/v1/rules/`) renders every file; this module only compares and writes
bytes, so the same records always give the same files. A file is ours when it carries the
server's marker: only such files are updated or removed, a hand-written file is never touched.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field

# Folders never searched for generated AGENTS.md files.
_SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}
_SAFE_PART = re.compile(r"^[^\x00-\x1f\\]+$")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePath(ValueError):
    pass


def check_path(path: str) -> str:
    """A server-given path, accepted only when it stays inside the output folder and names one
    of the three kinds of rule file."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or _DRIVE.match(path)
        or any(p in ("", ".", "..") or not _SAFE_PART.match(p) for p in parts)
    ):
        raise UnsafePath(path)
    name = parts[-1]
    if not (
        name == "AGENTS.md"
        or (parts[:2] == [".github", "instructions"] and name.endswith(".instructions.md"))
        or (parts[:2] == [".cursor", "rules"] and name.endswith(".mdc"))
    ):
        raise UnsafePath(path)
    return path


def generated_files(out: str, marker: str) -> dict[str, bytes]:
    """{relative path: bytes} of the rule files under `out` that carry the marker."""
    found: dict[str, bytes] = {}
    candidates: list[str] = []
    for top, dirs, files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        rel_top = os.path.relpath(top, out).replace(os.sep, "/")
        rel_top = "" if rel_top == "." else rel_top + "/"
        for name in files:
            rel = rel_top + name
            if name == "AGENTS.md" or (
                (rel.startswith(".github/instructions/") and name.endswith(".instructions.md"))
                or (rel.startswith(".cursor/rules/") and name.endswith(".mdc"))
            ):
                candidates.append(rel)
    needle = marker.encode()
    for rel in candidates:
        try:
            with open(os.path.join(out, rel), "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if needle in data:
            found[rel] = data
    return found


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Paths the server wants to write where a hand-written file (no marker) already is.
    foreign: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.update or self.remove or self.foreign)


def plan(out: str, files: dict[str, bytes], marker: str) -> Plan:
    ours = generated_files(out, marker) if os.path.isdir(out) else {}
    result = Plan()
    for rel in sorted(files):
        target = os.path.join(out, rel)
        if rel in ours:
            (result.unchanged if ours[rel] == files[rel] else result.update).append(rel)
        elif os.path.lexists(target):
            result.foreign.append(rel)
        else:
            result.create.append(rel)
    result.remove = sorted(rel for rel in ours if rel not in files)
    return result


def _write(path: str, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename: a reader (or an
    interrupted run) never sees half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".contextkb-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def apply(out: str, files: dict[str, bytes], result: Plan) -> None:
    for rel in result.create + result.update:
        _write(os.path.join(out, rel), files[rel])
    for rel in result.remove:
        os.unlink(os.path.join(out, rel))

"""Markdown rendering benchmark: the adversarial payloads of tests/core/markdown_payloads.py.

For each payload and size, prints the time cmark-gfm takes to parse it (linear in the input),
the time of the full render a page pays on a cache miss (`render_markdown`: cmark-gfm + nh3,
in a child process stopped after MARKDOWN_RENDER_TIMEOUT for bodies over
MARKDOWN_INLINE_MAX_CHARS), and whether the body was formatted or shown as plain text.
With --python-markdown, also times the previous renderer (Python-Markdown + the same nh3
allow-list) in a child process stopped after --old-timeout seconds.

Usage: .venv/bin/python bench/markdown_bench.py [--sizes 25000,50000,100000,200000]
       [--python-markdown --old-timeout 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

OLD_RENDERER = """
import sys, markdown, nh3
from apps.core.markdown_render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES
text = sys.stdin.read()
html = markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES)
"""


def time_old(text: str, timeout: float) -> str:
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-c", OLD_RENDERER],
            input=text.encode(),
            cwd=ROOT,
            timeout=timeout,
            check=True,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        return f">{timeout:.0f} s"
    return f"{time.perf_counter() - start:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25000,50000,100000,200000")
    parser.add_argument("--python-markdown", action="store_true")
    parser.add_argument("--old-timeout", type=float, default=60.0)
    options = parser.parse_args()

    import django

    django.setup()
    import cmarkgfm
    from django.core.cache import cache

    from apps.core.markdown import TOO_COMPLEX_NOTICE, render_markdown
    from apps.core.markdown_render import EXTENSIONS, OPTIONS
    from tests.core.markdown_payloads import payloads

    sizes = [int(size) for size in options.sizes.split(",")]
    header = f"{'payload':40} {'chars':>7} {'cmark':>8} {'render':>8}  result"
    if options.python_markdown:
        header += "      python-markdown"
    print(header)
    for size in sizes:
        for name, text in payloads(size).items():
            start = time.perf_counter()
            cmarkgfm.markdown_to_html_with_extensions(text, options=OPTIONS, extensions=EXTENSIONS)
            parsed = time.perf_counter() - start
            cache.clear()
            start = time.perf_counter()
            html = str(render_markdown(text))
            rendered = time.perf_counter() - start
            result = "plain text" if TOO_COMPLEX_NOTICE in html else "formatted"
            line = f"{name:40} {size:7d} {parsed:7.3f}s {rendered:7.3f}s  {result:10}"
            if options.python_markdown:
                line += f"  {time_old(text, options.old_timeout):>10}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

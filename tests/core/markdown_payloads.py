"""Markdown bodies built to find slow paths in a renderer, each of exactly the given length.

Used by tests/core/test_markdown_adversarial.py and bench/markdown_bench.py.
"""


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _fill(head: str, unit: str, size: int) -> str:
    return head + _repeat(unit, size - len(head))


REPEATED = {
    # Unclosed link destinations and code spans: quadratic in Python-Markdown (issue 19).
    "unclosed links [a](": "[a](",
    "unclosed code spans ``a`": "``a`",
    "half links [a](b": "[a](b",
    "open brackets [": "[",
    "open images ![": "![",
    "nested images [![": "[![",
    "brackets per line [\\n": "[\n",
    "emphasis openers *a": "*a",
    "emphasis openers _a": "_a",
    "mixed delimiters **_": "**_",
    "delimiters and brackets *[": "*[",
    "delimiters _*": "_*",
    "closers a*": "a*",
    "angle brackets <": "<",
    "unclosed tags <a ": "<a ",
    "autolink openers <http://": "<http://",
    "backslashes \\": "\\",
    "numeric entity openers &#x": "&#x",
    "named entity prefixes &notin": "&notin",
    "comment openers <!--": "<!--",
    "short lines a\\n": "a\n",
    "trailing spaces": "  \n",
    "blockquote markers >": ">",
    "blockquotes of lists > - ": "> - ",
    "list markers - ": "- ",
    "fence openers": "```\n",
    "pipes |": "|",
    "strikethrough ~~": "~~",
    "bare www. autolinks": "www.a ",
    # Raw HTML that nh3's HTML parser handles slowly when nested thousands deep.
    "nested divs <div>": "<div>",
    "nested definition lists <dl><dd>": "<dl><dd>",
    "nested tables": "<table><tr><td>",
    "nested anchors <a>": "<a>",
    "misnested formatting <b><p>x</b>": "<b><p>x</b>",
}


def payloads(size: int) -> dict[str, str]:
    """name -> markdown body of exactly `size` characters."""
    out = {name: _repeat(unit, size) for name, unit in REPEATED.items()}
    depth = 0
    nested_list = []
    while sum(map(len, nested_list)) < size:
        nested_list.append("  " * depth + "- a\n")
        depth += 1
    out["deeply nested list"] = "".join(nested_list)[:size]
    out["long link reference definition"] = _fill("[a]: /", "x", size - 4) + "\n[a]"
    refs = "".join(f"[r{i}]: /u{i}\n" for i in range(size // 24))
    out["many reference definitions and uses"] = _fill(refs, "[r1] ", size)
    columns = size // 6
    header = "|" + "a|" * columns + "\n|" + "-|" * columns + "\n"
    out["very wide table"] = _fill(header[: size // 2], "|\n", size)
    out["table with many rows"] = _fill("|a|b|\n|-|-|\n", "|x|y|\n", size)
    formatting = "".join(f"<b id={i}>" for i in range(size // 24))
    out["formatting tags then blocks"] = _fill(formatting, "<div></div>x", size)
    attrs = "".join(f" b{i}" for i in range(size // 8))
    out["a tag with thousands of attributes"] = _fill("<a" + attrs, " ", size - 1) + ">"
    return {name: text[:size] for name, text in out.items()}

"""The markdown renderer itself, free of Django so it can also run as a child process.

cmark-gfm (GitHub's CommonMark parser, via cmarkgfm) parses in time linear in the input, and
nh3 then strips anything executable. nh3's HTML parser has slow paths on some raw HTML (block
elements nested thousands deep, tags with thousands of attributes), so `apps.core.markdown`
renders long bodies in a child process it can stop: `python -m apps.core.markdown_render`
reads markdown on stdin and writes sanitised HTML on stdout.
"""

import sys

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "ol": {"start"},
}
# No javascript:, data: or vbscript: URLs; relative links are allowed.
URL_SCHEMES = {"http", "https", "mailto"}
# Raw HTML is passed to nh3 (which keeps only the allow-list above); a newline is a line break.
OPTIONS = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_HARDBREAKS
EXTENSIONS = ["table", "strikethrough", "autolink"]


def render(text: str) -> str:
    """Sanitised HTML for `text` (not marked safe: callers decide)."""
    html = cmarkgfm.markdown_to_html_with_extensions(text, options=OPTIONS, extensions=EXTENSIONS)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


if __name__ == "__main__":
    source = sys.stdin.buffer.read().decode("utf-8", "replace")
    sys.stdout.buffer.write(render(source).encode("utf-8"))

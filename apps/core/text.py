"""Invisible and direction-changing characters in text that people and AI tools read.

A bidirectional override (U+202E and friends) makes text display differently from its bytes:
"abc" + U+202E + "fed" shows as "abcdef". In short fields (titles, summaries, tags, anchors,
deciders, link notes, gap questions, space and token names) such characters are removed on
save (`strip_invisible`, called by the services), whichever door the text came through. Body
text keeps them (right-to-left writing needs the marks); agent-facing output and the editor's
preview show them as visible escapes such as `<U+202E>` (`reveal_invisible`).
"""

import re

# Bidirectional embeddings, overrides and isolates, the directional marks, and the invisible
# characters that hide text boundaries (zero-width space, word joiner, byte-order mark).
# Zero-width (non-)joiners U+200C/U+200D stay: Persian, Indic scripts and emoji sequences use them.
INVISIBLE = (
    "\u061c"  # ARABIC LETTER MARK
    "\u200b"  # ZERO WIDTH SPACE
    "\u200e\u200f"  # LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK
    "\u202a\u202b\u202c\u202d\u202e"  # LRE, RLE, PDF, LRO, RLO
    "\u2060"  # WORD JOINER
    "\u2066\u2067\u2068\u2069"  # LRI, RLI, FSI, PDI
    "\ufeff"  # ZERO WIDTH NO-BREAK SPACE (byte-order mark)
)
_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")


def has_invisible(text: str) -> bool:
    return bool(_INVISIBLE_RE.search(text))


def strip_invisible(text: str) -> str:
    """`text` without bidirectional controls and invisible characters (for short fields)."""
    return _INVISIBLE_RE.sub("", text)


def reveal_invisible(text: str) -> str:
    """`text` with each such character written as `<U+XXXX>`, so it reads as its bytes."""
    return _INVISIBLE_RE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)

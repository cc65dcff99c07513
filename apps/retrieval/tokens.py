"""Token counting that works offline.

The Llama-2 SentencePiece tokenizer (32,000-token vocabulary) ships inside the wordllama wheel
and is read with the `tokenizers` library: nothing is downloaded at run time. Its counts run a
little higher than OpenAI's cl100k/o200k encodings for English prose, so a bundle that fits by
this count also fits most models' budgets. Without that file, a documented estimate
(characters / 3.5, rounded up, per block) is used instead.

Counts are additive over lines. The tokenizer has no pre-tokenizer and no vocabulary entry (so
no merge) contains a newline: a newline is always one byte-fallback token of its own and no
token spans it. The tokens of a document are therefore the tokens of its first line (with the
leading "▁" the normaliser adds to every text) plus, for every later line, one newline token and
the tokens of the line as it reads after a newline. `count_after_newline()` gives the latter, so
a context bundle is counted block by block, from stored and cached counts, without tokenizing
the finished document again (`tests/retrieval/test_tokens.py` checks this against the tokenizer
on the ADR corpus and hostile text). `is_additive()` re-checks the vocabulary when the tokenizer
loads; if a future tokenizer breaks the rule, bundles fall back to counting the whole document.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from pathlib import Path

ESTIMATE_METHOD = "estimate: ceil(characters / 3.5) per block"
TOKENIZER_METHOD = (
    "llama-2 sentencepiece tokenizer (32k vocabulary, shipped in the wordllama wheel)"
)


def _tokenizer_path() -> Path:
    import wordllama

    return (
        Path(wordllama.__file__).resolve().parent
        / "tokenizers"
        / "l2_supercat_tokenizer_config.json"
    )


@functools.cache
def _tokenizer():
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    except Exception:  # missing file or library: fall back to the estimate
        return None


@functools.cache
def fingerprint() -> str:
    """Identifies the counting method (a hash of the tokenizer file): counts stored under another
    fingerprint are not trusted."""
    if _tokenizer() is None:
        return "estimate-3.5"
    return hashlib.sha256(_tokenizer_path().read_bytes()).hexdigest()[:16]


@functools.cache
def is_additive() -> bool:
    """True when no token can span a newline (see the module docstring)."""
    tokenizer = _tokenizer()
    if tokenizer is None:
        return True  # the estimate is defined per block
    return not any("\n" in piece for piece in tokenizer.get_vocab())


@functools.cache
def _newline_base() -> int:
    return len(_tokenizer().encode("\n", add_special_tokens=False).ids)


def counting_method() -> str:
    return TOKENIZER_METHOD if _tokenizer() is not None else ESTIMATE_METHOD


@functools.cache
def splits_at_spaces() -> bool:
    """True when a single space between two other characters always starts a token: no
    vocabulary entry holds "▁" (the normaliser's space) after its first character unless it is
    all "▁". Text is then counted word by word from cached counts, exactly."""
    tokenizer = _tokenizer()
    if tokenizer is None or not is_additive():
        return False
    return all(piece.strip("▁") == "" or "▁" not in piece[1:] for piece in tokenizer.get_vocab())


# A single space between two characters that are neither whitespace nor "▁" itself (two "▁" in a
# row could be one token).
_WORD_GAP = re.compile(r"(?<=[^\s\u2581]) (?=[^\s\u2581])")


def _encoded(text: str) -> int:
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


@functools.lru_cache(maxsize=65536)
def _word(text: str) -> int:
    """Tokens of a word that follows a space (the normaliser's leading "▁" stands for it)."""
    return _encoded(text)


@functools.lru_cache(maxsize=16384)
def _line_start(text: str) -> int:
    """Tokens of the first word of a line that follows a newline."""
    return _encoded("\n" + text) - _newline_base()


def _count_lines(text: str, at_start: bool) -> int:
    total = text.count("\n")
    if at_start and text.startswith("\n"):
        total += 1  # the normaliser's leading "▁", a token of its own before a newline
    for number, line in enumerate(text.split("\n")):
        if not line:
            continue
        first, *rest = _WORD_GAP.split(line)
        total += (_word(first) if at_start and number == 0 else _line_start(first)) + sum(
            _word(w) for w in rest
        )
    return total


@functools.lru_cache(maxsize=4096)
def count(text: str) -> int:
    """Tokens in `text` as a document of its own."""
    if not text:
        return 0
    if _tokenizer() is None:
        return math.ceil(len(text) / 3.5)
    if splits_at_spaces():
        return _count_lines(text, at_start=True)
    return _encoded(text)


@functools.lru_cache(maxsize=16384)
def count_after_newline(text: str) -> int:
    """Tokens `text` adds to a document when it follows a newline (cached: record head and title
    lines come back request after request)."""
    if not text:
        return 0
    if _tokenizer() is None:
        return math.ceil(len(text) / 3.5)
    if splits_at_spaces():
        return _count_lines(text, at_start=False)
    return _encoded("\n" + text) - _newline_base()


def count_many_after_newline(texts: list[str]) -> list[int]:
    """`count_after_newline` of many texts (for stored counts) in one tokenizer call."""
    tokenizer = _tokenizer()
    if tokenizer is None:
        return [count_after_newline(t) for t in texts]
    base = _newline_base()
    encodings = tokenizer.encode_batch(["\n" + t for t in texts], add_special_tokens=False)
    return [len(e.ids) - base if t else 0 for e, t in zip(encodings, texts, strict=True)]


@functools.cache
def longest_token_chars() -> int:
    """Characters in the longest vocabulary entry: no text has fewer tokens than its length
    divided by this (a sanity bound for stored counts)."""
    tokenizer = _tokenizer()
    if tokenizer is None:
        return 4
    return max(len(piece) for piece in tokenizer.get_vocab())

"""Token counting that works offline.

The Llama-2 SentencePiece tokenizer (32,000-token vocabulary) ships inside the wordllama wheel
and is read with the `tokenizers` library: nothing is downloaded at run time. Its counts run a
little higher than OpenAI's cl100k/o200k encodings for English prose, so a bundle that fits by
this count also fits most models' budgets. Without that file, a documented estimate
(characters / 3.5, rounded up) is used instead.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

ESTIMATE_METHOD = "estimate: ceil(characters / 3.5)"
TOKENIZER_METHOD = (
    "llama-2 sentencepiece tokenizer (32k vocabulary, shipped in the wordllama wheel)"
)


@functools.cache
def _tokenizer():
    try:
        import wordllama
        from tokenizers import Tokenizer

        path = (
            Path(wordllama.__file__).resolve().parent
            / "tokenizers"
            / "l2_supercat_tokenizer_config.json"
        )
        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    except Exception:  # missing file or library: fall back to the estimate
        return None


def counting_method() -> str:
    return TOKENIZER_METHOD if _tokenizer() is not None else ESTIMATE_METHOD


@functools.lru_cache(maxsize=4096)
def count(text: str) -> int:
    """Tokens in `text` (cached: the same record blocks come back request after request)."""
    if not text:
        return 0
    tokenizer = _tokenizer()
    if tokenizer is None:
        return math.ceil(len(text) / 3.5)
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def count_many(texts: list[str]) -> list[int]:
    tokenizer = _tokenizer()
    if tokenizer is None:
        return [count(t) for t in texts]
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [len(e.ids) if t else 0 for e, t in zip(encodings, texts, strict=True)]

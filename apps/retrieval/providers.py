"""Embedding providers behind one small interface, chosen by CONTEXTKB_EMBEDDINGS_PROVIDER.

- `wordllama`: a static embedding model whose weights and tokenizer ship inside the PyPI wheel;
  loaded from the installed package folder with downloads disabled, so it never touches the
  network.
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, TEI), with
  batching, a timeout and retries with backoff.
- `none`: no vectors; retrieval is full-text only.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np
from django.conf import settings
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

logger = logging.getLogger(__name__)


class EmbeddingUnavailable(Exception):
    """The provider could not produce vectors right now (network, server error, bad reply)."""


class EmbeddingProvider(Protocol):
    #: "<provider>:<model>:<dimensions>", stored with each vector.
    model_key: str
    dimensions: int

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, in order. Raises EmbeddingUnavailable."""
        ...


def _normalise(matrix: np.ndarray) -> list[list[float]]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32).tolist()


class WordLlamaProvider:
    """Local static embeddings (wordllama l2_supercat, 256 dimensions); thread-safe, offline."""

    config = "l2_supercat"
    dimensions = 256
    model_key = f"wordllama:{config}:{dimensions}"
    _lock = threading.Lock()
    _model = None

    @classmethod
    def model(cls):
        if cls._model is None:
            with cls._lock:
                if cls._model is None:
                    import wordllama

                    # 0.4.0.post1 looks for its tokenizer in `<package>/tokenizer/` (singular)
                    # but ships it in `<package>/tokenizers/`, then tries to download it. With
                    # the package folder as cache_dir both files resolve locally.
                    package_dir = Path(wordllama.__file__).resolve().parent
                    cls._model = wordllama.WordLlama.load(
                        config=cls.config,
                        dim=cls.dimensions,
                        cache_dir=package_dir,
                        disable_download=True,
                    )
        return cls._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            matrix = self.model().embed(texts, norm=False, return_np=True)
        except Exception as exc:  # a broken install must not take the request down
            raise EmbeddingUnavailable(f"wordllama failed: {exc}") from exc
        return _normalise(np.asarray(matrix, dtype=np.float32))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class OpenAIProvider:
    """An OpenAI-compatible `/v1/embeddings` endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        dimensions: int = 0,
        timeout: float = 10.0,
        batch_size: int = 64,
        attempts: int = 3,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.requested_dimensions = dimensions
        self.timeout = timeout
        self.batch_size = batch_size
        self.attempts = attempts
        # Known up front when configured; otherwise learned from the first reply (each stored
        # vector also records its own size).
        self.dimensions = dimensions
        self.model_key = f"openai:{model}:{dimensions or 'native'}"

    def _post(self, client: httpx.Client, batch: list[str]) -> list[list[float]]:
        payload: dict = {"model": self.model, "input": batch}
        if self.requested_dimensions:
            payload["dimensions"] = self.requested_dimensions
        response = client.post(f"{self.base_url}/embeddings", json=payload)
        response.raise_for_status()
        data = response.json()["data"]
        data = sorted(data, key=lambda item: item.get("index", 0))
        if len(data) != len(batch):
            raise EmbeddingUnavailable(
                f"The embeddings endpoint returned {len(data)} vectors for {len(batch)} texts."
            )
        return [item["embedding"] for item in data]

    def embed(
        self, texts: list[str], *, timeout: float | None = None, attempts: int | None = None
    ) -> list[list[float]]:
        if not texts:
            return []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        post = retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(attempts or self.attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )(self._post)
        vectors: list[list[float]] = []
        try:
            with httpx.Client(timeout=timeout or self.timeout, headers=headers) as client:
                for start in range(0, len(texts), self.batch_size):
                    vectors.extend(post(client, texts[start : start + self.batch_size]))
        except EmbeddingUnavailable:
            raise
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingUnavailable(f"Embeddings endpoint failed: {exc}") from exc
        sizes = {len(v) for v in vectors}
        if len(sizes) != 1 or 0 in sizes:
            raise EmbeddingUnavailable("The embeddings endpoint returned vectors of mixed sizes.")
        size = sizes.pop()
        if self.requested_dimensions and size != self.requested_dimensions:
            raise EmbeddingUnavailable(
                f"Asked for {self.requested_dimensions} dimensions, got {size}."
            )
        self.dimensions = size
        return _normalise(np.asarray(vectors, dtype=np.float32))


@functools.cache
def _cached_provider(name: str, *args) -> EmbeddingProvider | None:
    if name == "wordllama":
        return WordLlamaProvider()
    if name == "openai":
        base_url, model, api_key, dimensions, timeout, batch_size = args
        return OpenAIProvider(
            base_url=base_url,
            model=model,
            api_key=api_key,
            dimensions=dimensions,
            timeout=timeout,
            batch_size=batch_size,
        )
    return None


def get_provider() -> EmbeddingProvider | None:
    """The configured provider (one per configuration and process), or None for `none`."""
    name = settings.CONTEXTKB_EMBEDDINGS_PROVIDER
    if name == "openai":
        return _cached_provider(
            name,
            settings.CONTEXTKB_EMBEDDINGS_URL,
            settings.CONTEXTKB_EMBEDDINGS_MODEL,
            settings.CONTEXTKB_EMBEDDINGS_API_KEY,
            settings.CONTEXTKB_EMBEDDINGS_DIMENSIONS,
            settings.CONTEXTKB_EMBEDDINGS_TIMEOUT,
            settings.CONTEXTKB_EMBEDDINGS_BATCH_SIZE,
        )
    return _cached_provider(name)


def current_model_key() -> str | None:
    provider = get_provider()
    return provider.model_key if provider is not None else None

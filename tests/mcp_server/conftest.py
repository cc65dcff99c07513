import pytest

from apps.retrieval import usage


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    # Tests never publish usage entries to a broker.
    monkeypatch.setattr(usage, "dispatch", lambda payload: None)

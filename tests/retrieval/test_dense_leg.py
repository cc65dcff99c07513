"""The dense leg's default: BM25 answers alone, and the query is embedded only when no record
shares a word with it (`CONTEXTKB_DENSE_FUSION=fallback`); `rrf` fuses vectors into every search.
Measured in docs/benchmarks.md ("Does the dense leg earn its place?")."""

import pytest

from apps.records import services as record_services
from apps.retrieval import search
from tests.factories import make_record
from tests.retrieval.test_providers import FakeEmbeddings

URL = "/api/v1/context/"


@pytest.fixture
def fake():
    server = FakeEmbeddings()
    yield server
    server.server.shutdown()


@pytest.fixture
def remote_provider(settings, fake):
    """The OpenAI-compatible provider against a local fake server, which counts what it is asked."""
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "openai"
    settings.CONTEXTKB_EMBEDDINGS_URL = fake.url
    settings.CONTEXTKB_EMBEDDINGS_MODEL = "fake-embed"
    settings.CONTEXTKB_EMBEDDINGS_API_KEY = "sk-test"
    settings.CONTEXTKB_EMBEDDINGS_TIMEOUT = 2.0
    search._embed_query_cached.cache_clear()  # queries embedded by earlier tests
    yield fake
    search._embed_query_cached.cache_clear()


def queries_sent(fake) -> list[str]:
    return [text for r in fake.requests for text in r["body"]["input"]]


def test_the_default_fusion_is_bm25_with_vectors_only_when_no_word_matches(settings):
    assert settings.CONTEXTKB_DENSE_FUSION == "fallback"


def test_an_edit_is_found_by_full_text_at_once_without_waiting_for_a_vector(
    remote_provider, api, space, owner
):
    record = make_record(space=space, actor=owner, title="Nightly ledger export", status="accepted")
    record_services.record_update(
        record=record,
        actor=owner,
        expected_version=record.version,
        changes={"summary": "Exports go to the reconciliation bucket in Frankfurt."},
    )
    # No worker ran: the edited text has no vector yet.

    body = api.get(URL, {"q": "frankfurt reconciliation bucket"}).json()

    assert [i["key"] for i in body["items"]] == [record.key]
    assert body["retrieval"].startswith("full-text")
    # BM25 answered, so the remote provider was not asked to embed the query.
    assert queries_sent(remote_provider) == []


def test_with_no_word_in_common_the_vector_leg_answers(remote_provider, add, api):
    target = add("Customers pay by credit card", summary="Card payments via the PSP.")
    remote_provider.requests.clear()  # the record's own embedding

    body = api.get(URL, {"q": "visa mastercard"}).json()

    assert target.key in [i["key"] for i in body["items"]]
    assert body["retrieval"] == "hybrid"
    assert queries_sent(remote_provider) == ["visa mastercard"]


def test_rrf_fusion_asks_for_vectors_on_every_search(settings, remote_provider, add, api):
    settings.CONTEXTKB_DENSE_FUSION = "rrf"
    target = add("Nightly ledger export", summary="Exports go to the reconciliation bucket.")
    remote_provider.requests.clear()

    body = api.get(URL, {"q": "ledger export"}).json()

    assert body["items"][0]["key"] == target.key
    assert body["retrieval"] == "hybrid"
    assert queries_sent(remote_provider) == ["ledger export"]
    assert "full-text match" in body["items"][0]["why"]

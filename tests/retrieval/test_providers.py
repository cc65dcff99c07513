"""Embedding providers: wordllama offline for real, the OpenAI-compatible one against a fake server."""

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from apps.retrieval import providers, tasks
from apps.retrieval.models import RecordEmbedding
from tests.factories import make_record


class FakeEmbeddings:
    """A tiny OpenAI-compatible /v1/embeddings server: deterministic vectors, switchable faults."""

    def __init__(self, dims=8):
        self.dims = dims
        self.mode = "ok"  # ok | error | slow
        self.fail_next = 0  # answer this many requests with 503 first (then `mode`)
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                if fake.mode == "error" or fake.fail_next > 0:
                    fake.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if fake.mode == "slow":
                    time.sleep(1.5)
                data = [
                    {"index": i, "embedding": fake.vector(text)}
                    for i, text in enumerate(body["input"])
                ]
                payload = json.dumps({"data": data[::-1], "model": body["model"]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def vector(self, text):
        digest = hashlib.sha256(text.encode()).digest()
        return [b / 255 + 0.01 for b in digest[: self.dims]]


@pytest.fixture
def fake():
    server = FakeEmbeddings()
    yield server
    server.server.shutdown()


@pytest.fixture
def openai_settings(settings, fake):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "openai"
    settings.CONTEXTKB_EMBEDDINGS_URL = fake.url
    settings.CONTEXTKB_EMBEDDINGS_MODEL = "fake-embed"
    settings.CONTEXTKB_EMBEDDINGS_API_KEY = "sk-test"
    settings.CONTEXTKB_EMBEDDINGS_TIMEOUT = 0.5
    settings.CONTEXTKB_EMBEDDINGS_BATCH_SIZE = 2
    return settings


def test_wordllama_loads_and_embeds_with_the_network_off(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(providers.WordLlamaProvider, "_model", None)

    provider = providers.WordLlamaProvider()
    a, b, c = provider.embed(
        ["refund a card payment", "money back to the customer's card", "kubernetes node pool"]
    )

    assert len(a) == 256 and abs(np.linalg.norm(a) - 1) < 1e-4
    assert np.dot(a, b) > np.dot(a, c)


def test_openai_provider_batches_and_returns_unit_vectors(openai_settings, fake):
    provider = providers.get_provider()
    vectors = provider.embed(["one", "two", "three"])

    assert len(fake.requests) == 2  # batch size 2
    assert fake.requests[0]["auth"] == "Bearer sk-test"
    assert fake.requests[0]["body"]["model"] == "fake-embed"
    assert [len(v) for v in vectors] == [8, 8, 8]
    expected = np.array(fake.vector("three"))
    assert np.allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-5)
    assert provider.model_key == "openai:fake-embed:native"


def test_openai_provider_retries_then_gives_up_on_server_errors(openai_settings, fake):
    fake.mode = "error"
    with pytest.raises(providers.EmbeddingUnavailable):
        providers.get_provider().embed(["x"])
    assert len(fake.requests) == 3


def test_openai_provider_retries_a_passing_failure_and_succeeds(openai_settings, fake):
    fake.fail_next = 2
    vectors = providers.get_provider().embed(["one"])
    assert len(vectors) == 1 and len(vectors[0]) == 8
    assert len(fake.requests) == 3  # two 503s, then the answer


def test_openai_provider_times_out(openai_settings, fake):
    fake.mode = "slow"
    started = time.monotonic()
    with pytest.raises(providers.EmbeddingUnavailable):
        providers.get_provider().embed(["x"])
    assert time.monotonic() - started < 5


def test_when_the_provider_is_down_writes_succeed_and_embedding_is_retried_later(
    openai_settings, fake, space, owner, api
):
    fake.mode = "error"
    record = make_record(space=space, actor=owner, title="Ledger reconciliation runs quarterly")

    # Called directly, the task re-raises instead of scheduling its retry.
    with pytest.raises(providers.EmbeddingUnavailable):
        tasks.embed_record(record.pk)
    assert not RecordEmbedding.objects.filter(record=record).exists()
    started = time.monotonic()
    body = api.get("/api/v1/context/", {"q": "ledger reconciliation"}).json()
    assert [i["key"] for i in body["items"]] == [record.key]
    # Full text answered (the default fusion asks for vectors only when no word matches).
    assert body["retrieval"].startswith("full-text")
    # The next request does not wait on the failing provider again.
    asked = len(fake.requests)
    api.get("/api/v1/context/", {"q": "quarterly ledger"})
    assert len(fake.requests) == asked
    assert time.monotonic() - started < 5

    fake.mode = "ok"
    assert tasks.embed_missing() == 1
    embedding = RecordEmbedding.objects.get(record=record)
    assert embedding.model_key == "openai:fake-embed:native" and embedding.dimensions == 8
    assert tasks.embed_missing() == 0  # nothing left; unchanged text is not re-sent


def test_reindex_command_switches_every_record_to_the_new_provider(
    settings, openai_settings, fake, space, owner
):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    records = [make_record(space=space, actor=owner, title=f"Rule {i}") for i in range(3)]
    call_command("reindex_embeddings", stdout=StringIO(), stderr=StringIO())
    assert set(RecordEmbedding.objects.values_list("model_key", flat=True)) == {
        "wordllama:l2_supercat:256"
    }

    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "openai"
    out = StringIO()
    call_command("reindex_embeddings", stdout=out, stderr=StringIO())
    assert "Embedded 3 of 3 records" in out.getvalue()
    assert (
        RecordEmbedding.objects.filter(
            record__in=records, model_key="openai:fake-embed:native", dimensions=8
        ).count()
        == 3
    )


def test_reindex_shows_progress_refuses_an_unknown_space_and_refreshes_old_counts(
    space, owner, capsys
):
    from django.core.management.base import CommandError

    records = [make_record(space=space, actor=owner, title=f"Rule {i}") for i in range(3)]
    out = StringIO()
    call_command("reindex_embeddings", "--space", space.slug, stdout=out)
    assert "Embedded 3 of 3 records" in out.getvalue()
    assert "3/3" in capsys.readouterr().err  # the progress bar

    with pytest.raises(CommandError, match="No space with the slug 'nope'"):
        call_command("reindex_embeddings", "--space", "nope", stdout=StringIO())

    # Counts from an older counting scheme: the vectors stay, the counts are redone.
    RecordEmbedding.objects.filter(record=records[0]).update(token_counts={"full": 1})
    out = StringIO()
    call_command("reindex_embeddings", stdout=out)
    assert "Embedded 0 of 1 records" in out.getvalue()
    assert "token counts are up to date" in out.getvalue()
    assert RecordEmbedding.objects.get(record=records[0]).token_counts["method"]

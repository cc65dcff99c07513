"""The real path: a committed write or context request → broker → a Celery worker process."""

import time
import uuid

import pytest
from rest_framework.test import APIClient

from apps.retrieval import tasks, usage
from apps.retrieval.models import ContextRequest, RecordEmbedding
from tests.factories import make_record, make_token
from tests.workers import database_env, start_celery_worker

# Captured at import, before the autouse fixture swaps it for a no-op.
REAL_DISPATCH = usage.dispatch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _worker_env() -> dict:
    return database_env(CONTEXTKB_EMBEDDINGS_PROVIDER="wordllama")


def _on_queue(task, queue, monkeypatch):
    original = task.apply_async

    def send(*args, **kwargs):
        kwargs.setdefault("queue", queue)
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "apply_async", send)


@pytest.fixture
def worker_queue(monkeypatch):
    """A private queue (no other worker on the shared broker takes these tasks), its worker."""
    queue = f"retrieval-test-{uuid.uuid4().hex[:8]}"
    for task in (tasks.embed_record, tasks.log_context_request):
        _on_queue(task, queue, monkeypatch)
    worker = start_celery_worker(queue, _worker_env())
    yield worker
    worker.terminate()
    worker.communicate(timeout=20)


def _wait_for(check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_embeds_records_after_commit_and_logs_context_requests(
    worker_queue, space, owner, monkeypatch
):
    monkeypatch.setattr(usage, "dispatch", REAL_DISPATCH)  # the real background hand-off
    record = make_record(
        space=space, actor=owner, title="Customers pay by credit card", status="accepted"
    )

    assert _wait_for(lambda: RecordEmbedding.objects.filter(record=record).exists())

    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {make_token(owner)[1]}", HTTP_USER_AGENT="cursor/1.0"
    )
    body = client.get("/api/v1/context/", {"q": "visa mastercard checkout"}).json()
    assert [i["key"] for i in body["items"]] == [record.key]
    assert "semantic match" in body["items"][0]["why"]

    assert _wait_for(lambda: ContextRequest.objects.filter(tool="cursor/1.0").exists())
    entry = ContextRequest.objects.get(tool="cursor/1.0")
    assert entry.results[0]["key"] == record.key

"""A Celery worker logs JSON lines too, tagged with the task and with the id of the web request
that enqueued it, so one X-Request-ID finds a request and the background work it caused."""

import json
import queue as queue_module
import threading
import uuid

import pytest

from apps.retrieval import tasks
from tests.factories import make_token
from tests.workers import database_env, start_celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_log_lines_are_json_with_the_task_and_the_request_id(
    client, space, owner, monkeypatch
):
    queue = f"ops-logs-{uuid.uuid4().hex[:8]}"
    original = tasks.embed_record.apply_async
    monkeypatch.setattr(
        tasks.embed_record,
        "apply_async",
        lambda *args, **kwargs: original(*args, **{**kwargs, "queue": queue}),
    )
    # The worker's embeddings provider is down (nothing listens on port 9): the task logs a
    # warning and schedules a retry.
    env = database_env(
        LOG_FORMAT="json",
        CELERY_TASK_DEFAULT_QUEUE=queue,
        CONTEXTKB_EMBEDDINGS_PROVIDER="openai",
        CONTEXTKB_EMBEDDINGS_URL="http://127.0.0.1:9/v1",
        CONTEXTKB_EMBEDDINGS_TIMEOUT="1",
    )
    worker = start_celery_worker(queue, env)
    lines: queue_module.Queue[str] = queue_module.Queue()
    threading.Thread(
        target=lambda: [lines.put(line.decode(errors="replace")) for line in worker.stdout],
        daemon=True,
    ).start()
    try:
        _, token = make_token(owner, scope="read_write", spaces=[space])
        created = client.post(
            "/api/v1/records/",
            {"space": space.slug, "kind": "decision", "title": "Ship on Tuesdays"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_X_REQUEST_ID="req-from-web-42",
        )
        assert created.status_code == 201
        record_id = created.json()["id"]
        found = None
        while found is None:
            line = lines.get(timeout=90)  # raises Empty (fails) if the worker never logs it
            if line.startswith("{") and f"Embedding record {record_id} failed" in line:
                found = json.loads(line)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert found["level"] == "WARNING"
    assert found["logger"] == "apps.retrieval.tasks"
    assert found["task_name"] == "apps.retrieval.tasks.embed_record"
    assert len(found["task_id"]) == 36  # a Celery task id (uuid)
    assert found["request_id"] == "req-from-web-42"

"""Probes for orchestrators and logs an operator can search by request id."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from apps.core import views as core_views


def test_healthz_answers_without_touching_dependencies(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["embeddings"] in {"ok", "disabled"}
    assert body["checks"]["replica"] == "not configured"  # DATABASE_REPLICA_URL unset


def test_readyz_is_503_and_names_the_failing_dependency(client, db, monkeypatch):
    # A broker nobody listens on (nothing runs on port 9 on this machine).
    from contextkb.celery import app

    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    monkeypatch.setitem(app.conf, "broker_transport_options", {})
    monkeypatch.setitem(core_views.READY_CHECKS, "embeddings", lambda: "ok")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")


def test_an_embeddings_outage_degrades_readiness_without_failing_it(client, db, settings):
    class Broken(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    fake = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "openai"
        settings.CONTEXTKB_EMBEDDINGS_URL = f"http://127.0.0.1:{fake.server_port}/v1"
        response = client.get("/readyz")
    finally:
        fake.shutdown()
    # Writes and full-text search still work without embeddings: stay in rotation.
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["embeddings"] == "error: EmbeddingUnavailable"


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client, db):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.9")["X-Request-ID"] == "lb-7f3a.9"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="x\nINJECTED log line")["X-Request-ID"]
    assert "INJECTED" not in forged


def test_log_lines_are_json_tagged_with_the_request_id(client, db, caplog):
    from apps.core.logs import JsonFormatter, RequestContextFilter

    caplog.set_level(logging.INFO, logger="contextkb.request")
    response = client.get("/accounts/login/?next=/x", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 200
    record = next(r for r in caplog.records if r.name == "contextkb.request")
    RequestContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42"
    assert line["status"] == 200
    assert line["path"] == "/accounts/login/"
    assert line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float)

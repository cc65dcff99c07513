"""The embeddings provider hangs or fails: writes through the API still succeed at once, the record
is found by full-text, and it is embedded later when the provider is back."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pytest

from tests.reliability.conftest import manage, start_gunicorn


class FakeEmbeddings:
    """A local stand-in for a remote OpenAI-compatible /v1/embeddings API."""

    def __init__(self, fault: str):
        self.fault = fault  # "timeout", "error" or "" (healthy)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.fault == "timeout":
                    time.sleep(3)  # longer than the client's timeout
                    return
                if fake.fault == "error":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"index": i, "embedding": [1.0, float(i), 0.5, 0.25]} for i in range(len(texts))
                ]
                payload = json.dumps({"data": data, "model": body["model"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"


@pytest.mark.parametrize(
    ("fault", "title"),
    [("timeout", "Quarterly ledger reconciliation"), ("error", "Monthly payout reconciliation")],
)
def test_writes_and_search_survive_an_embeddings_outage(
    live_server_on_private_db, private_database, fault, title
):
    seed = live_server_on_private_db
    fake = FakeEmbeddings(fault)
    extra = {
        "CONTEXTKB_EMBEDDINGS_PROVIDER": "openai",
        "CONTEXTKB_EMBEDDINGS_URL": fake.url,
        "CONTEXTKB_EMBEDDINGS_MODEL": "fake-embed",
        "CONTEXTKB_EMBEDDINGS_TIMEOUT": "1",
    }
    url, process = start_gunicorn(
        private_database.url, private_database.var_dir, workers=1, extra_env=extra
    )
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {seed.token}"}, timeout=30
        ) as api:
            started = time.monotonic()
            created = api.post(
                "/api/v1/records/",
                json={
                    "space": seed.space,
                    "kind": "constraint",
                    "title": title,
                    "body": "The ledger is reconciled against the bank every period.",
                },
            )
            assert created.status_code == 201, created.text
            assert time.monotonic() - started < 2  # embedding never blocks the write
            found = api.get("/api/v1/context/", params={"q": title.lower()})
            assert found.status_code == 200
            body = found.json()
            assert created.json()["key"] in [item["key"] for item in body["items"]]
            assert "full-text" in body["retrieval"]
    finally:
        process.terminate()
        process.wait(timeout=20)

    # The provider is back: the periodic catch-up (what beat runs every 10 minutes) embeds it.
    fake.fault = ""
    out = manage(
        private_database.url,
        "shell",
        "-c",
        "from apps.retrieval.tasks import embed_missing; print('EMBEDDED', embed_missing())",
        var_dir=private_database.var_dir,
        extra_env=extra,
    )
    fake.server.shutdown()
    assert "EMBEDDED" in out
    with psycopg.connect(private_database.url) as conn:
        model = conn.execute(
            "SELECT e.model_key FROM retrieval_recordembedding e JOIN records_record r "
            "ON r.id = e.record_id WHERE r.title = %s",
            [title],
        ).fetchone()
    assert model is not None and model[0].startswith("openai:fake-embed")

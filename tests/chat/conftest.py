"""A local HTTP sink standing in for Slack and Teams (the one remote part that cannot run here),
and helpers to sign Slack interactive callbacks as Slack does."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import browser, new_page, shoot  # noqa: F401 - fixtures for screenshots

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example format


class Sink:
    """What a fake Slack/Teams received. `script[path]` holds answers to give first, each
    (status, body) or ("sleep", seconds); afterwards every request gets 200 "ok"."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: dict[str, list] = {}
        self.lock = threading.Lock()
        self.url = ""

    def accepted(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path and r["status"] < 300]

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


def _handler(sink: Sink):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with sink.lock:
                answers = sink.script.get(self.path) or []
                answer = answers.pop(0) if answers else (200, "ok")
            if answer[0] == "sleep":
                time.sleep(answer[1])
                answer = (200, "ok")
            status, body = answer
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            with sink.lock:
                sink.requests.append(
                    {
                        "path": self.path,
                        "status": status,
                        "json": parsed,
                        "headers": dict(self.headers),
                    }
                )
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header(
                    "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler


@pytest.fixture
def sink():
    sink = Sink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _chat_settings(settings):
    settings.SITE_URL = "http://testserver"
    settings.REMINDERS_DIGEST_HOUR = 0
    settings.CHAT_ALLOW_HTTP = True
    settings.CHAT_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.CHAT_SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.CHAT_TIMEOUT_SECONDS = 1.0


def slack_request(payload: dict, *, timestamp: int | None = None, secret: str = SIGNING_SECRET):
    """(body, headers) of an interactive callback, signed as Slack signs it: v0 HMAC-SHA256 of
    "v0:{timestamp}:{body}" with the signing secret."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return body, {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def block_actions(
    *,
    value: str,
    action_id: str = "still_true:0",
    user_id: str = "U0OWNER1",
    trigger_id: str = "1234.5678.abcdef",
    response_url: str = "",
) -> dict:
    """A block_actions payload as Slack sends it for a button press (trimmed to what matters)."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "owner", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "team": {"id": "T0TEAM", "domain": "acme"},
        "trigger_id": trigger_id,
        "response_url": response_url,
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "line-0",
                "value": value,
                "action_ts": "1700000001.000200",
            }
        ],
    }

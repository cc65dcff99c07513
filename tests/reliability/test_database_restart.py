"""PostgreSQL restarts under load: fast 503s during the outage, service resumes by itself."""

import asyncio
import re
import subprocess
import sys
import threading
import time

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.reliability.conftest import ROOT, free_port, server_env

SLOW = 3.0  # seconds: anything slower than this during the outage counts as hanging


def _sign_in(server) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
    page = browser.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = browser.post(
        "/accounts/login/",
        data={"username": "loadtester", "password": "Load-test-pw-1", "csrfmiddlewaretoken": token},
        headers={"Referer": server.url + "/accounts/login/"},
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    return browser


def test_requests_fail_fast_with_503_while_the_database_restarts(
    live_server_on_private_db, private_database
):
    server = live_server_on_private_db
    path = f"/api/v1/records/{server.record_id}/"
    browser = _sign_in(server)
    assert browser.get("/").status_code == 200
    log: list[tuple[float, int, float, str]] = []
    stop = threading.Event()

    def load():
        with server.client(timeout=20) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = http.get(path)
                    status, kind = response.status_code, response.headers.get("content-type", "")
                    if status == 503:
                        assert response.json()["error"]["code"] == "service_unavailable"
                        assert response.headers["Retry-After"] == "5"
                except httpx.HTTPError as exc:
                    status, kind = 0, type(exc).__name__
                log.append((started, status, time.monotonic() - started, kind))
                time.sleep(0.02)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        # Every client has been served before the outage (a busy machine may take a while).
        deadline = time.monotonic() + 60
        while sum(1 for entry in log if entry[1] == 200) < 2 * len(threads):
            assert time.monotonic() < deadline, log
            time.sleep(0.1)
        outage_start = time.monotonic()
        private_database.stop()
        stopped_at = time.monotonic()
        stopped_in = stopped_at - outage_start
        time.sleep(0.5)
        t0 = time.monotonic()
        page = browser.get("/")  # a person's page during the outage: a short HTML 503
        page_seconds = time.monotonic() - t0
        assert page.status_code == 503
        assert page_seconds < SLOW, (stopped_in, page_seconds)
        assert "Temporarily unavailable" in page.text
        assert page.headers["content-type"].startswith("text/html")
        time.sleep(1.5)
        outage_end = time.monotonic()
        private_database.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (log and log[-1][1] == 200):
            time.sleep(0.2)
        recovered_at = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    def summary(entries):
        return [
            (round(t - outage_start, 2), status, round(elapsed, 2))
            for t, status, elapsed, _ in entries
        ]

    before = [entry for entry in log if entry[0] + entry[2] < outage_start]
    # Requests started once the server was down (pg_ctl waits for it) and before it came back.
    during = [entry for entry in log if stopped_at < entry[0] < outage_end]
    after = [entry for entry in log if entry[0] > recovered_at]
    assert before and all(status == 200 for _, status, _, _ in before), summary(before)
    # During the outage: nothing but quick 503s (no 500s, no hangs, no dropped connections).
    assert during, "no requests were made during the outage"
    assert {status for _, status, _, _ in during} == {503}, summary(during)
    assert max(elapsed for _, _, elapsed, _ in during) < SLOW, summary(during)
    # Afterwards the same server processes serve again without any manual step.
    assert after and all(status == 200 for _, status, _, _ in after), summary(log)
    assert browser.get("/").status_code == 200
    assert server.process.poll() is None


def _start_uvicorn(database_url: str, var_dir) -> tuple[str, subprocess.Popen]:
    """The MCP process as deployed (docs/operations.md), on the private database."""
    port = free_port()
    log_path = var_dir / f"uvicorn-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "contextkb.asgi:application",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=server_env(database_url, var_dir),
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.3)


async def _mcp_tools(url: str, token: str) -> set[str]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_mcp_answers_503_json_with_retry_after_while_the_database_is_down(
    live_server_on_private_db, private_database
):
    token = live_server_on_private_db.token
    url, process = _start_uvicorn(private_database.url, private_database.var_dir)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "outage-test", "version": "1"},
        },
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
    }
    try:
        assert "search_context" in asyncio.run(_mcp_tools(url, token))
        private_database.stop()
        try:
            started = time.monotonic()
            response = httpx.post(url + "/mcp", json=initialize, headers=headers, timeout=20)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.headers["Retry-After"] == "5"
            assert response.json()["error"]["code"] == "service_unavailable"
            assert elapsed < SLOW
        finally:
            private_database.start()
        # Back without a restart of the MCP process.
        deadline = time.monotonic() + 20
        while True:
            try:
                assert "search_context" in asyncio.run(_mcp_tools(url, token))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)

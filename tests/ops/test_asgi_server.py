"""The MCP/ASGI processes as deployed (docker-compose, docs/operations.md): `uvicorn
contextkb.asgi:application --workers 2` starts, serves Django and answers /mcp."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.workers import database_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def test_uvicorn_with_several_workers_serves_django_and_mcp(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "uvicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "contextkb.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=database_env(DJANGO_DEBUG="false", CONTEXTKB_VAR_DIR=str(tmp_path / "var")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "uvicorn.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "uvicorn.log").read_text()[-3000:]
            time.sleep(0.5)
        # Both workers came up (one that crashed on start-up would leave a traceback).
        time.sleep(2)
        assert "Traceback" not in (tmp_path / "uvicorn.log").read_text()
        for _ in range(6):
            assert httpx.get(base + "/readyz", timeout=10).json()["checks"]["database"] == "ok"
        refused = httpx.post(base + "/mcp", json={}, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "authentication_failed"
    finally:
        server.terminate()
        server.wait(timeout=30)

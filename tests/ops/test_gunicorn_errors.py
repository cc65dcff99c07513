"""Requests gunicorn refuses itself (overlong URL or header, too many headers) get the API's
JSON error shape, under the production server as documented: `gunicorn
contextkb.wsgi:application --workers N --threads N` started from the repository root."""

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


@pytest.fixture
def gunicorn_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "contextkb.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"],
        cwd=ROOT,
        env=database_env(DJANGO_DEBUG="false", CONTEXTKB_VAR_DIR=str(tmp_path / "var")),
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _assert_api_error(response, status: int) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def test_an_overlong_url_gets_a_json_error(gunicorn_url):
    response = httpx.get(f"{gunicorn_url}/api/v1/records/?q={'x' * 10_000}", timeout=10)
    error = _assert_api_error(response, 400)
    assert error["code"] == "bad_request"
    assert "Request Line is too large" in error["message"]


def test_an_overlong_header_gets_a_json_error(gunicorn_url):
    response = httpx.get(
        f"{gunicorn_url}/api/v1/records/",
        headers={"Authorization": "Bearer " + "x" * 10_000},
        timeout=10,
    )
    error = _assert_api_error(response, 431)
    assert error["code"] == "request_header_fields_too_large"


def test_too_many_headers_get_a_json_error(gunicorn_url):
    headers = {f"X-Extra-{i}": "1" for i in range(120)}
    response = httpx.get(f"{gunicorn_url}/api/v1/records/", headers=headers, timeout=10)
    _assert_api_error(response, 431)


def test_requests_within_the_limits_still_reach_the_api(gunicorn_url):
    response = httpx.get(f"{gunicorn_url}/api/v1/records/?q={'x' * 3_000}", timeout=10)
    assert _assert_api_error(response, 401)["code"] in {
        "not_authenticated",
        "authentication_failed",
    }

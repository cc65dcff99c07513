"""`contextkb mcp`: the official MCP Python SDK client spawns the command over stdio, and talks
through it to a live server's Streamable HTTP `/mcp`."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from apps.retrieval import usage
from tests.clients.test_cli import CLIENT_SRC, run_cli
from tests.factories import make_record, make_token
from tests.live import serve_asgi
from tests.mcp_server.test_mcp import live_mcp  # noqa: F401 (the live server fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    monkeypatch.setattr(usage, "dispatch", lambda payload: None)


def _env(url: str, token: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTEXTKB_", "DJANGO_"))}
    env.update({"PYTHONPATH": str(CLIENT_SRC), "CONTEXTKB_URL": url, "CONTEXTKB_TOKEN": token})
    return env


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_an_mcp_client_calls_remote_tools_through_contextkb_mcp(live_mcp, space, owner):  # noqa: F811
    guard = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never log card numbers",
        body="Mask all but the last four digits.",
        anchors=["services/billing/**"],
        status="accepted",
    )
    _, plain = make_token(owner, spaces=[space])
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "contextkb_cli", "mcp"], env=_env(live_mcp, plain)
    )

    async def scenario():
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            # Several requests at once go out concurrently and each answer finds its request.
            guards, assessed = await asyncio.gather(
                client.call_tool("guardrails_for_paths", {"paths": ["services/billing/x.py"]}),
                client.call_tool("assess_change", {"paths": ["services/billing/api.py"]}),
            )
            missing = await client.call_tool("get_record", {"key": "DEC-999"})
            return names, _text(guards), _text(assessed), missing

    names, guards, assessed, missing = asyncio.run(scenario())
    assert {"search_context", "get_record", "guardrails_for_paths", "assess_change"} <= names
    assert "Never log card numbers" in guards and "Mask all but the last four" in guards
    assert "Review level: deep" in assessed and guard.key in assessed
    assert missing.is_error


def test_contextkb_mcp_with_a_bad_token_or_no_server_exits_before_speaking_mcp(
    live_mcp,  # noqa: F811
):
    for env, code, text in (
        (_env(live_mcp, "ckb_wrong"), 5, "refused the token (401)"),
        (_env("http://127.0.0.1:9", "ckb_x"), 4, "cannot reach http://127.0.0.1:9"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "contextkb_cli", "mcp"],
            env=env,
            input="",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == code, done.stderr
        assert done.stdout == ""  # nothing on the MCP channel
        assert done.stderr.startswith("contextkb: error: ") and done.stderr.count("\n") == 1
        assert text in done.stderr
    assert run_cli("mcp", "--url", live_mcp).returncode == 3


@pytest.fixture
def sse_server():
    """The official SDK's own MCP server in its default mode (sessions, answers as SSE
    streams), behind a bearer check; records the requests. Not contextkb: it shows the bridge
    handles what any Streamable HTTP server may answer."""

    from mcp.server.mcpserver import MCPServer

    server = MCPServer("sse-test")

    @server.tool()
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    starlette_app = server.streamable_http_app(streamable_http_path="/mcp")
    seen: list[tuple[str, str, str | None]] = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            seen.append(
                (
                    scope["method"],
                    scope["path"],
                    (headers.get(b"mcp-session-id") or b"").decode() or None,
                )
            )
            if headers.get(b"authorization") != b"Bearer ckb_sse":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            if scope["path"] == "/api/v1/me/":
                body = b'{"username": "sse"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await starlette_app(scope, receive, send)

    with serve_asgi(app) as url:
        yield url, seen


def test_the_bridge_keeps_the_session_and_relays_sse_answers(sse_server):
    url, seen = sse_server
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "contextkb_cli", "mcp"], env=_env(url, "ckb_sse")
    )

    async def scenario():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            loud = _text(await client.call_tool("shout", {"text": "over sse"}))
            return tools, loud

    tools, loud = asyncio.run(scenario())
    assert tools == {"shout"} and loud == "OVER SSE"
    posts = [s for s in seen if s[0] == "POST"]
    session = next(s[2] for s in seen if s[2])
    # Up to the initialisation no session exists (the SDK client may first probe with
    # server/discover, which this server refuses); every request after carries the one given.
    first = next(i for i, s in enumerate(posts) if s[2])
    assert 1 <= first <= 2 and all(s[2] is None for s in posts[:first])
    assert all(s[2] == session for s in posts[first:])
    assert len(posts[first:]) >= 3  # initialized, tools/list, tools/call
    # The session is ended on exit.
    deadline = time.monotonic() + 10
    while ("DELETE", "/mcp", session) not in seen:
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)

"""`contextkb mcp`: the official MCP Python SDK client spawns the command over stdio, and talks
through it to a live server's Streamable HTTP `/mcp`."""

import asyncio
import os
import subprocess
import sys

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from apps.retrieval import usage
from tests.clients.test_cli import CLIENT_SRC, run_cli
from tests.factories import make_record, make_token
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

"""The MCP server driven by the official SDK client over Streamable HTTP and stdio."""

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from apps.records import services
from apps.retrieval import services as retrieval_services
from apps.retrieval.models import Gap
from tests.factories import make_record, make_token
from tests.live import live_contextkb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def live_mcp(transactional_db):
    """contextkb (Django + MCP at /mcp) under uvicorn, in a thread."""
    with live_contextkb() as url:
        yield url


@pytest.fixture
def corpus(space, owner, other_space, outsider):
    old = make_record(
        space=space, actor=owner, title="Retry failed payments nightly", status="accepted"
    )
    new = make_record(
        space=space,
        actor=owner,
        title="Retry failed payments from the job queue",
        summary="Use the job queue with exponential backoff.",
        status="accepted",
    )
    services.record_supersede(old=old, new=new, actor=owner)
    guard = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never log card numbers",
        body="Mask all but the last four digits.",
        anchors=["services/billing/**"],
        status="accepted",
    )
    hidden = make_record(space=other_space, actor=outsider, title="Retry payments elsewhere")
    retrieval_services.embed_records(record_ids=[old.pk, new.pk, guard.pk, hidden.pk])
    return {"old": old, "new": new, "guard": guard, "hidden": hidden}


def _http_client(url: str, plain: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {plain}"})
    return Client(streamable_http_client(url + "/mcp", http_client=http))


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_tools_over_streamable_http_with_token_auth(live_mcp, corpus, owner, space):
    _, plain = make_token(owner, spaces=[space])

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"search_context", "get_record", "guardrails_for_paths", "report_gap"} <= names

            found = _text(
                await client.call_tool(
                    "search_context",
                    {"query": "retry failed payments", "paths": ["services/billing/api.py"]},
                )
            )
            guards = _text(
                await client.call_tool("guardrails_for_paths", {"paths": ["services/billing/x.py"]})
            )
            record = _text(await client.call_tool("get_record", {"key": corpus["old"].key}))
            resource = await client.read_resource(f"contextkb://payments/{corpus['guard'].key}")
            missing = await client.call_tool(
                "get_record", {"key": corpus["hidden"].key, "space": "elsewhere"}
            )
            gap = _text(
                await client.call_tool(
                    "report_gap", {"query": "How do refunds work?", "note": "nothing on refunds"}
                )
            )
            return found, guards, record, resource, missing, gap

    found, guards, record, resource, missing, gap = asyncio.run(scenario())

    assert found.index(corpus["guard"].key) < found.index(corpus["new"].key)
    assert f'key="{corpus["old"].key}"' not in found  # superseded: replaced by its successor
    assert f"Replaces {corpus['old'].key}" in found
    assert corpus["hidden"].key not in found or "elsewhere" not in found
    assert "Never log card numbers" in guards and "Mask all but the last four" in guards
    assert f"Superseded by {corpus['new'].key}" in record
    assert "Mask all but the last four digits." in resource.contents[0].text
    assert missing.is_error
    assert "recorded" in gap
    assert Gap.objects.get(space=space).notes == ["nothing on refunds"]


def test_streamable_http_refuses_a_bad_or_missing_token(live_mcp):
    response = httpx.post(
        live_mcp + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"

    async def with_bad_token():
        async with _http_client(live_mcp, "ckb_wrong") as client:
            await client.list_tools()

    # The SDK wraps the 401 in its own error types.
    with pytest.raises(Exception):
        asyncio.run(with_bad_token())


def test_streamable_http_shares_the_rest_apis_rate_limit_and_says_when_to_retry(
    live_mcp, owner, space, settings
):
    _, plain = make_token(owner, spaces=[space])
    settings.API_THROTTLE_RATES = {"token": "3/minute", "ip": "1000/minute"}

    def mcp_call(token=plain):
        return httpx.post(
            live_mcp + "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Accept": "application/json, text/event-stream",
                "Authorization": f"Bearer {token}",
            },
        )

    assert [mcp_call().status_code for _ in range(2)] == [200, 200]
    # The third request of the minute comes through the REST API: the same budget.
    rest = httpx.get(live_mcp + "/api/v1/me/", headers={"Authorization": f"Bearer {plain}"})
    assert rest.status_code == 200
    refused = mcp_call()
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "throttled"
    # Another token of the same user has its own budget.
    _, other = make_token(owner, spaces=[space])
    again = mcp_call(other)
    assert again.status_code == 200 and "search_context" in again.text


def test_a_token_scoped_to_another_space_finds_nothing_here(live_mcp, corpus, outsider):
    _, plain = make_token(outsider)

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            return _text(
                await client.call_tool("search_context", {"query": "retry failed payments"})
            )

    text = asyncio.run(scenario())
    assert corpus["new"].key not in text or 'space="payments"' not in text
    assert 'space="payments"' not in text


def _stdio_env() -> dict:
    db = connection.settings_dict
    host = quote(db["HOST"] or "localhost", safe="")
    url = f"postgres://{db['USER']}@{host}:{db['PORT']}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {
            "DATABASE_URL": url,
            "CONTEXTKB_EMBEDDINGS_PROVIDER": "wordllama",
            "CONTEXTKB_USAGE_LOG": "false",
        }
    )
    return env


def _stdio(plain: str) -> Client:
    return Client(
        StdioServerParameters(
            command=sys.executable,
            args=[str(Path(settings.BASE_DIR) / "manage.py"), "mcp_stdio", "--token", plain],
            env=_stdio_env(),
            cwd=str(settings.BASE_DIR),
        )
    )


def test_tools_over_stdio(corpus, owner, space):
    _, plain = make_token(owner, spaces=[space])

    async def scenario():
        async with _stdio(plain) as client:
            return _text(
                await client.call_tool(
                    "search_context", {"query": "job queue backoff", "max_tokens": 800}
                )
            )

    text = asyncio.run(scenario())
    assert f'key="{corpus["new"].key}"' in text
    assert "# Context from contextkb" in text


def test_stdio_refuses_a_bad_token(transactional_db):
    import subprocess

    result = subprocess.run(
        [sys.executable, "manage.py", "mcp_stdio", "--token", "ckb_nope"],
        cwd=settings.BASE_DIR,
        env=_stdio_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "Invalid, expired or revoked token" in result.stderr


def test_resources_list_names_only_visible_records_in_pages(
    live_mcp, corpus, owner, space, monkeypatch
):
    from apps.mcp_server import tools

    monkeypatch.setattr(tools, "RESOURCES_PAGE", 2)
    _, plain = make_token(owner, spaces=[space])

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            pages, cursor = [], None
            while True:
                result = await client.list_resources(cursor=cursor)
                pages.append([r.uri for r in result.resources])
                cursor = result.next_cursor
                if cursor is None:
                    break
            first = await client.read_resource(pages[0][0])
            return pages, first.contents[0].text

    pages, first = asyncio.run(scenario())

    uris = [u for page in pages for u in page]
    expected = {f"contextkb://payments/{corpus[k].key}" for k in ("old", "new", "guard")}
    assert set(uris) == expected and len(uris) == 3  # the other space's record is not listed
    assert [len(p) for p in pages] == [2, 1]
    assert first.startswith("<record key=")


def test_a_token_revoked_mid_session_is_refused_on_the_next_call(live_mcp, corpus, owner):
    from apps.accounts.services import token_revoke

    token, plain = make_token(owner)

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            first = _text(await client.call_tool("get_record", {"key": corpus["guard"].key}))
            await sync_to_async(token_revoke)(token=token, actor=owner)
            try:
                await client.call_tool("get_record", {"key": corpus["guard"].key})
            except Exception as exc:  # the SDK surfaces the 401 as its own error type
                return first, exc
            return first, None

    first, refused = asyncio.run(scenario())
    assert "Never log card numbers" in first
    assert refused is not None


def test_bidi_overrides_are_visible_escapes_in_tool_output_and_gone_from_gaps(
    live_mcp, owner, space
):
    rlo = "\u202e"
    record = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Mask card numbers",
        body=f"Mask all but the last four.{rlo}txet neddih\u2069 Done.",
        anchors=["services/billing/**"],
        status="accepted",
    )
    # A title stored before the rule (or by a bulk load): outputs reveal it all the same.
    type(record).objects.filter(pk=record.pk).update(title=f"Mask card{rlo} numbers")
    retrieval_services.embed_records(record_ids=[record.pk])
    _, plain = make_token(owner, spaces=[space])

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            found = _text(
                await client.call_tool(
                    "search_context",
                    {"query": "mask card numbers", "paths": ["services/billing/api.py"]},
                )
            )
            got = _text(await client.call_tool("get_record", {"key": record.key}))
            resource = await client.read_resource(f"contextkb://payments/{record.key}")
            await client.call_tool("report_gap", {"query": f"how do we{rlo} refund", "note": rlo})
            return found, got, resource.contents[0].text

    for text in asyncio.run(scenario()):
        assert rlo not in text and "\u2069" not in text
        assert "Mask card<U+202E> numbers" in text
        assert "four.<U+202E>txet neddih<U+2069> Done." in text
    assert Gap.objects.get(space=space).query == "how do we refund"

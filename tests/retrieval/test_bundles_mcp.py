"""Bundles over MCP, driven by the official SDK client: search_context names its bundle and the
revisions it quotes, get_bundle returns it as sent, as_of reads the past."""

import asyncio
import datetime as dt
import re

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.records import services as record_services
from tests.factories import make_record, make_token
from tests.mcp_server.test_mcp import _http_client, _text, live_mcp  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_search_context_names_its_bundle_get_bundle_returns_it_and_as_of_reads_the_past(
    live_mcp,  # noqa: F811
    usage_log,
    space,
    owner,
    outsider,
):
    with time_machine.travel(dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        record = make_record(
            space=space,
            actor=owner,
            title="Invoices retry nightly",
            summary="A cron job retries failed invoices.",
            status="accepted",
        )
    with time_machine.travel(dt.datetime(2026, 2, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        record_services.record_update(
            record=record,
            actor=owner,
            expected_version=1,
            changes={"title": "Invoices retry from the job queue"},
        )
    _, plain = make_token(owner, spaces=[space])
    _, outsider_plain = make_token(outsider)

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"search_context", "get_bundle"} <= names
            found = _text(await client.call_tool("search_context", {"query": "invoices retry"}))
            bundle_id = re.search(r"\(bundle ([0-9a-f]{20})\)", found).group(1)
            again = _text(await client.call_tool("get_bundle", {"bundle_id": bundle_id}))
            past = _text(
                await client.call_tool(
                    "search_context", {"query": "invoices retry", "as_of": "2026-01-31"}
                )
            )
            bad = await client.call_tool(
                "search_context", {"query": "invoices retry", "as_of": "last tuesday"}
            )
        async with _http_client(live_mcp, outsider_plain) as client:
            refused = await client.call_tool("get_bundle", {"bundle_id": bundle_id})
        return found, bundle_id, again, past, bad, refused

    found, bundle_id, again, past, bad, refused = asyncio.run(scenario())

    head = next(line for line in found.splitlines() if line.startswith("<record "))
    assert f'key="{record.key}"' in head and head.endswith('revision="2">')
    assert "Invoices retry from the job queue" in found
    assert again == found  # exactly what was sent

    assert "as the records read at 2026-01-31 23:59 UTC" in past
    assert f"### {record.key}: Invoices retry nightly" in past
    assert 'revision="1">' in past and "job queue" not in past

    assert bad.is_error and "as_of" in _text(bad)

    assert refused.is_error
    assert "Invoices" not in _text(refused) and record.key not in _text(refused)

    # The same bundle over REST, as markdown: the text the MCP client got.
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = rest.get(f"/api/v1/context/bundles/{bundle_id}")
    assert response.status_code == 200
    assert response.content.decode() == found

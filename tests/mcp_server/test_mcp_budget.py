"""search_context through the official MCP client: the text it returns never exceeds max_tokens
(counted with the project's tokenizer), excerpts keep their lines, bad input is a tool error."""

import asyncio
import re

import pytest

from apps.retrieval import services as retrieval_services
from apps.retrieval import tokens, usage
from tests.factories import make_record, make_token
from tests.mcp_server.test_mcp import _http_client, _text, live_mcp  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BODY = (
    "## Context\nCards fail for many reasons.\n\n"
    "| code | retry |\n|---|---|\n| 402 | no |\n| 503 | yes |\n\n## Decision\n"
    + " ".join(f"Step {i} of the retry schedule for failed payments." for i in range(60))
)


@pytest.fixture
def many(space, owner):
    records = [
        make_record(
            space=space,
            actor=owner,
            title=f"Retry failed payments, rule {i}",
            summary=f"Rule {i} of retrying failed payments.",
            body=BODY,
            status="accepted",
        )
        for i in range(12)
    ]
    retrieval_services.embed_records(record_ids=[r.pk for r in records])
    return records


def test_search_context_never_exceeds_max_tokens_and_says_what_was_left_out(
    live_mcp,  # noqa: F811
    many,
    owner,
    space,
):
    _, plain = make_token(owner, spaces=[space])
    budgets = [50, 60, 80, 120, 250, 600, 1500]

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            return [
                _text(
                    await client.call_tool(
                        "search_context",
                        {"query": "retry failed payments", "max_tokens": budget},
                    )
                )
                for budget in budgets
            ]

    texts = asyncio.run(scenario())

    for budget, text in zip(budgets, texts, strict=True):
        assert tokens.count(text) <= budget, (budget, tokens.count(text))
        # Every answer names its bundle, even the tightest.
        assert re.search(r"bundle [0-9a-f]{20}", text), budget
        if budget > 50:
            # At 50 the bundle's id (about 23 tokens of hex) and the header leave no room for
            # the line; from 60 on there is, and it is there.
            assert "Left out (token budget or superseded): " in text, budget
    # With room, the line names the keys left out; a bigger budget fits more records.
    assert "DEC-" in texts[-1].split("Left out")[1]
    assert texts[-1].count("<record ") > texts[4].count("<record ") >= 1
    # An excerpt keeps the body's lines: the heading and the table rows are not run together.
    assert "## Context\nCards fail for many reasons.\n\n| code | retry |\n|---|---|\n" in texts[-1]


@pytest.mark.parametrize(
    "arguments,words",
    [
        ({"query": "retry", "max_tokens": -5}, "max_tokens"),
        ({"query": "retry", "max_tokens": 10**9}, "max_tokens"),
        ({"query": "x" * 2001}, "q"),
        ({"query": ""}, "q"),
        ({"query": "retry", "space": "no-such-space"}, "no-such-space"),
    ],
)
def test_bad_search_arguments_are_a_tool_error_and_log_nothing(
    live_mcp,  # noqa: F811
    many,
    owner,
    space,
    monkeypatch,
    arguments,
    words,
):
    logged = []
    monkeypatch.setattr(usage, "dispatch", logged.append)
    _, plain = make_token(owner, spaces=[space])

    async def scenario():
        async with _http_client(live_mcp, plain) as client:
            return await client.call_tool("search_context", arguments)

    result = asyncio.run(scenario())

    assert result.is_error
    assert words in _text(result)
    assert logged == []

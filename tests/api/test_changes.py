"""POST /api/v1/changes/assess/: the records governing a change and its review level."""

import asyncio

import pytest

from apps.accounts.models import ApiToken
from tests.api.conftest import bearer
from tests.factories import (
    make_billing_guardrail,
    make_record,
    make_stale_reports_decision,
    make_token,
)
from tests.mcp_server.test_mcp import _http_client, _text, live_mcp  # noqa: F401 (a fixture)

URL = "/api/v1/changes/assess/"


@pytest.fixture
def governed(space, owner):
    guard = make_billing_guardrail(space=space, owner=owner)
    one_way = make_record(
        space=space,
        actor=owner,
        title="Money is stored as integer cents",
        anchors=["db/schema/**"],
        status="accepted",
        impact="high",
        reversibility="one_way",
        owner_user=owner,
    )
    stale = make_stale_reports_decision(
        space=space, owner=owner, impact="low", reversibility="two_way"
    )
    plain = make_record(
        space=space,
        actor=owner,
        kind="constraint",
        title="Docs build with mkdocs",
        anchors=["docs/**"],
        status="accepted",
        owner_user=owner,
    )
    return {"guard": guard, "one_way": one_way, "stale": stale, "plain": plain}


def _assess(api, plain, body):
    return api.post(URL, body, format="json", **bearer(plain))


def test_guardrail_anchor_makes_the_review_deep(api, governed, owner):
    _, plain = make_token(owner, scope=ApiToken.Scope.READ)  # a read token may assess
    response = _assess(api, plain, {"paths": ["services/billing/api.py", "README.md"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["level"] == "deep"
    assert any(governed["guard"].key in r for r in body["reasons"])
    [item] = body["records"]
    assert item["key"] == governed["guard"].key
    assert item["matched_paths"] == ["services/billing/api.py"]
    # Never verified: "Not yet verified", not fresh.
    assert item["owner"]["name"] and item["freshness"] == "unverified"
    assert body["unanchored_paths"] == ["README.md"]
    assert body["verify_first"] == [governed["guard"].key]


def test_one_way_high_impact_decision_and_stale_record_are_deep(api, governed, owner):
    _, plain = make_token(owner)
    one_way = _assess(api, plain, {"paths": ["db/schema/0001.sql"]}).json()
    assert one_way["level"] == "deep"
    assert "one-way-door" in one_way["reasons"][0]
    assert one_way["records"][0]["impact"] == "high"
    assert one_way["records"][0]["reversibility"] == "one_way"

    stale = _assess(
        api, plain, {"changes": [{"path": "reports/daily.py", "additions": 3, "deletions": 1}]}
    ).json()
    assert stale["level"] == "deep"
    assert f"{governed['stale'].key} (Reports are built nightly) is stale" in stale["reasons"]
    assert stale["records"][0]["freshness_reasons"]
    assert stale["lines_changed"] == 4


def test_normal_and_light_levels(api, governed, owner):
    _, plain = make_token(owner)
    normal = _assess(api, plain, {"paths": ["docs/index.md"]}).json()
    assert normal["level"] == "normal"
    assert [r["key"] for r in normal["records"]] == [governed["plain"].key]
    light = _assess(api, plain, {"paths": ["tools/format.sh"]}).json()
    assert light["level"] == "light"
    assert light["records"] == [] and light["unanchored_paths"] == ["tools/format.sh"]


def test_the_description_finds_unanchored_records(api, governed, owner):
    _, plain = make_token(owner)
    body = _assess(
        api,
        plain,
        {"paths": ["tools/x.py"], "title": "Store money as integer cents", "description": ""},
    ).json()
    found = {r["key"]: r for r in body["records"]}
    assert found[governed["one_way"].key]["found_by"] == "description"
    assert body["level"] == "deep"


def test_outsider_and_other_space_tokens_see_nothing_of_the_space(
    api, governed, outsider, other_space, teammate
):
    _, outsider_plain = make_token(outsider)
    body = _assess(api, outsider_plain, {"paths": ["services/billing/api.py"]}).json()
    assert body["level"] == "light" and body["records"] == []
    refused = _assess(api, outsider_plain, {"paths": ["x"], "spaces": ["payments"]})
    assert refused.status_code == 400
    assert "payments" in refused.json()["error"]["message"]

    _, mate_plain = make_token(teammate)
    mate = _assess(api, mate_plain, {"paths": ["services/billing/api.py"]}).json()
    assert [r["key"] for r in mate["records"]] == [governed["guard"].key]


def test_bad_input_and_bad_tokens(api, governed, owner):
    _, plain = make_token(owner)
    assert _assess(api, plain, {}).status_code == 400
    assert _assess(api, plain, {"paths": "services/x"}).status_code == 400
    assert _assess(api, plain, {"paths": [1, 2]}).status_code == 400
    nul = _assess(api, plain, {"paths": ["a\x00b"]})
    assert nul.status_code == 400 and "error" in nul.json()
    assert _assess(api, "ckb_wrong", {"paths": ["x"]}).status_code == 401
    assert api.post(URL, {"paths": ["x"]}, format="json").status_code == 401


def test_constant_queries_whatever_the_number_of_records(
    api, governed, owner, space, django_assert_max_num_queries
):
    _, plain = make_token(owner)
    _assess(api, plain, {"paths": ["services/billing/a.py"]})
    for i in range(10):
        make_record(
            space=space,
            actor=owner,
            kind="guardrail",
            title=f"Guard {i}",
            anchors=["services/billing/**"],
            status="accepted",
        )
    with django_assert_max_num_queries(12):
        body = _assess(api, plain, {"paths": ["services/billing/a.py"]}).json()
    assert len(body["records"]) == 11


def test_assess_change_is_an_mcp_tool(live_mcp, space, owner, outsider):  # noqa: F811
    guard = make_billing_guardrail(space=space, owner=owner)
    _, plain = make_token(owner)
    _, outsider_plain = make_token(outsider)

    async def call(token):
        async with _http_client(live_mcp, token) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "assess_change" in names
            return _text(
                await client.call_tool(
                    "assess_change", {"paths": ["services/billing/api.py", "README.md"]}
                )
            )

    text = asyncio.run(call(plain))
    assert "**Review level: deep**" in text
    assert f"touches guardrail {guard.key}" in text
    assert "No record covers: README.md" in text
    hidden = asyncio.run(call(outsider_plain))
    assert "**Review level: light**" in hidden and guard.key not in hidden

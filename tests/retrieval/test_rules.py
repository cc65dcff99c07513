"""GET /api/v1/rules/: rule files for agents from owner-verified records and their anchors
(apps.retrieval.rules, the renderer agents.md shares)."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.records import services
from apps.records.models import Record
from apps.retrieval.rules import anchor_directory, anchor_globs
from tests.factories import MembershipFactory, make_record, make_token

URL = "/api/v1/rules/"


def _api(user, **token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, **token)[1]}")
    return client


@pytest.fixture
def verified(space, owner):
    def _make(title, *, verify=True, **fields):
        fields.setdefault("status", "accepted")
        record = make_record(space=space, actor=owner, title=title, owner_user=owner, **fields)
        if verify:
            services.record_verify(record=record, actor=owner)
        return Record.objects.get(pk=record.pk)

    return _make


def files_of(response) -> dict[str, str]:
    assert response.status_code == 200, response.content
    return {f["path"]: f["content"] for f in response.json()["files"]}


def test_anchor_directories_and_globs():
    assert anchor_directory("services/billing/**") == "services/billing"
    assert anchor_directory("services/**/clients/*.py") == "services"
    assert anchor_directory("**/migrations/**") == ""
    assert anchor_directory("*.sql") == ""
    assert anchor_directory("db/schema.sql") == "db"
    assert anchor_directory("services/billing") == "services/billing"
    assert anchor_globs(["services/billing", "a/*.py"]) == [
        "services/billing",
        "services/billing/**",
        "a/*.py",
    ]


def test_rule_files_follow_the_anchors_of_owner_verified_records(verified, owner, space):
    everywhere = verified("No secrets in logs", kind="guardrail", body="## Why\nLeaks.")
    clients = verified(
        "External calls time out", kind="constraint", anchors=["services/**/clients/*.py"]
    )
    schema = verified("One schema file", anchors=["db/schema.sql"], impact="high")
    billing = verified("Billing owns invoices", anchors=["services/billing"], kind="intent")
    stale = verified("Ledger is append-only", kind="constraint", anchors=["services/ledger/**"])
    Record.objects.filter(pk=stale.pk).update(next_review_at=timezone.now() - dt.timedelta(days=3))
    never = verified("Never verified", kind="guardrail", anchors=["x/**"], verify=False)
    proposed = verified("Only proposed", kind="guardrail", anchors=["y/**"], status="proposed")
    wide_decision = verified("Space-wide decision")  # unanchored decisions are no path rule

    response = _api(owner).get(URL)
    files = files_of(response)
    assert list(files) == sorted(files)
    assert {p for p in files if p.endswith("AGENTS.md")} == {
        "AGENTS.md",
        "services/AGENTS.md",
        "db/AGENTS.md",
        "services/billing/AGENTS.md",
        "services/ledger/AGENTS.md",
    }
    assert len(files) == 5 + 2 * 5
    text = "".join(files.values())
    for record in (never, proposed, wide_decision):
        assert record.title not in text

    def copilot(record):
        return files[
            f".github/instructions/contextkb-payments-{record.key.lower()}.instructions.md"
        ]

    def cursor(record):
        return files[f".cursor/rules/contextkb-payments-{record.key.lower()}.mdc"]

    # A space-wide guardrail applies everywhere: the root AGENTS.md, `**`, always applied.
    assert f"[{everywhere.key}](" in files["AGENTS.md"] and "##### Why" in files["AGENTS.md"]
    assert 'applyTo: "**"\n' in copilot(everywhere)
    assert "globs: \nalwaysApply: true\n" in cursor(everywhere)
    assert 'applyTo: "services/**/clients/*.py"\n' in copilot(clients)
    assert f"[{clients.key}](" in files["services/AGENTS.md"]
    assert 'applyTo: "db/schema.sql,db/schema.sql/**"\n' in copilot(schema)
    assert "globs: services/billing,services/billing/**\nalwaysApply: false\n" in cursor(billing)
    assert "## Product intent" in files["services/billing/AGENTS.md"]
    # Freshness stamp from the record's own dates; a stale record says why it may not hold.
    ledger = files["services/ledger/AGENTS.md"]
    assert f"Freshness: v{stale.version} · accepted · stale · last verified " in ledger
    assert "_(stale)_" in ledger and "> May no longer hold: Its review was due on" in ledger

    listed = {r["key"]: r for r in response.json()["records"]}
    assert set(listed) == {everywhere.key, clients.key, schema.key, billing.key, stale.key}
    assert listed[schema.key]["files"] == [
        f".cursor/rules/contextkb-payments-{schema.key.lower()}.mdc",
        f".github/instructions/contextkb-payments-{schema.key.lower()}.instructions.md",
        "db/AGENTS.md",
    ]
    assert listed[schema.key]["url"].startswith("http")


def test_rules_show_only_what_the_caller_may_see(verified, owner, teammate, outsider, space):
    verified("Card data stays in the vault", kind="guardrail", anchors=["services/cards/**"])
    mine = files_of(_api(owner).get(URL, {"spaces": "payments"}))
    assert files_of(_api(teammate).get(URL)) == mine
    assert files_of(_api(outsider).get(URL)) == {}
    hidden = _api(outsider).get(URL, {"spaces": "payments"})
    assert hidden.status_code == 400
    assert hidden.json()["error"]["details"]["spaces"] == [
        "'payments' does not exist or is not visible."
    ]
    assert APIClient().get(URL).status_code == 401


def test_records_of_several_spaces_name_their_space(verified, owner, space, other_space):
    MembershipFactory(space=other_space, user=owner, role="editor")
    verified("Billing rule", kind="guardrail", anchors=["services/billing/**"])
    other = make_record(
        space=other_space,
        actor=owner,
        kind="guardrail",
        title="Elsewhere rule",
        anchors=["services/billing/**"],
        owner_user=owner,
        status="accepted",
    )
    services.record_verify(record=other, actor=owner)
    agents = files_of(_api(owner).get(URL))["services/billing/AGENTS.md"]
    assert "· space payments." in agents and "· space elsewhere." in agents
    assert "contextkb (elsewhere, payments)" in agents


def test_rules_run_a_bounded_number_of_queries(verified, owner, django_assert_max_num_queries):
    api = _api(owner)
    for i in range(3):
        verified(f"Rule {i}", kind="guardrail", anchors=[f"s{i}/**"])
    with django_assert_max_num_queries(12):
        files_of(api.get(URL))
    for i in range(3, 20):
        verified(f"Rule {i}", kind="constraint", anchors=[f"s{i}/**"])
    with django_assert_max_num_queries(12):
        assert len(files_of(api.get(URL))) == 20 * 3

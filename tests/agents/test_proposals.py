"""Proposals from agents: created through the services and the REST API, reviewed by people."""

import pytest
from rest_framework.test import APIClient

from apps.agents import services
from apps.agents.models import Proposal
from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, Forbidden, InvalidInput
from apps.records import services as record_services
from apps.records.models import Record, Revision
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

SECRET_BODY = (
    "Use this key: AKIAIOSFODNN7EXAMPLE with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)


def _client(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def guardrail(space, owner):
    return make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never retry a charge twice",
        body="Use the idempotency key of the first attempt.",
        anchors=["services/billing/**"],
        status="accepted",
    )


def test_accepting_an_update_applies_it_with_a_revision_crediting_agent_and_approver(
    agent_token, guardrail, owner
):
    token, _ = agent_token
    proposal = services.proposal_update(
        token=token,
        key=guardrail.key,
        changes={"body": "Use the idempotency key of the first attempt, for 24 hours."},
        base_version=guardrail.version,
        rationale="The key expires after a day.",
    )
    # Nothing changes before a person accepts.
    assert (
        Record.objects.get(pk=guardrail.pk).body == "Use the idempotency key of the first attempt."
    )

    services.proposal_accept(proposal=proposal, actor=owner)

    record = Record.objects.get(pk=guardrail.pk)
    assert record.body.endswith("for 24 hours.")
    assert record.status == "accepted"
    revision = record.revisions.order_by("-number").first()
    assert revision.author == owner
    assert "Proposed by agent Billing bot" in revision.message
    assert f"accepted by {owner}" in revision.message
    proposal.refresh_from_db()
    assert proposal.status == "accepted" and proposal.result_revision == revision.number


def test_a_proposal_against_an_older_version_is_a_conflict_never_applied_blindly(
    agent_token, guardrail, owner
):
    token, _ = agent_token
    seen = guardrail.version
    proposal = services.proposal_update(
        token=token, key=guardrail.key, changes={"title": "Never charge twice"}, base_version=seen
    )
    record_services.record_update(
        record=guardrail, actor=owner, expected_version=seen, changes={"summary": "Idempotent."}
    )
    proposal.refresh_from_db()
    assert proposal.is_conflict

    with pytest.raises(Conflict):
        services.proposal_accept(proposal=proposal, actor=owner)
    record = Record.objects.get(pk=guardrail.pk)
    assert record.title == "Never retry a charge twice"
    assert Proposal.objects.get(pk=proposal.pk).status == "pending"

    # Having compared with the current version, the owner accepts on top of it.
    services.proposal_accept(proposal=proposal, actor=owner, seen_version=record.version)
    record = Record.objects.get(pk=guardrail.pk)
    assert (record.title, record.summary) == ("Never charge twice", "Idempotent.")


def test_oversized_and_secret_bearing_proposals_are_refused_and_nothing_is_stored(
    agent_token, guardrail
):
    token, _ = agent_token
    with pytest.raises(InvalidInput) as too_big:
        services.proposal_new_record(
            token=token, space="payments", kind="decision", title="Big", body="x" * 200_001
        )
    assert "limited to 200,000 characters" in str(too_big.value.details["body"])
    with pytest.raises(InvalidInput) as secret:
        services.proposal_update(token=token, key=guardrail.key, changes={"body": SECRET_BODY})
    assert secret.value.code == "secret_detected"
    with pytest.raises(InvalidInput):
        services.proposal_new_record(
            token=token, space="payments", kind="decision", title="T", rationale="y" * 2001
        )
    assert not Proposal.objects.exists()


def test_only_the_owner_or_a_space_admin_reviews_and_a_rejection_needs_a_note(
    agent_token, guardrail, teammate, owner
):
    token, _ = agent_token
    proposal = services.proposal_flag_outdated(
        token=token, key=guardrail.key, evidence_url="https://git.example/pr/12"
    )
    with pytest.raises(Forbidden):
        services.proposal_reject(proposal=proposal, actor=teammate, note="no")
    with pytest.raises(InvalidInput):
        services.proposal_reject(proposal=proposal, actor=owner, note="  ")
    services.proposal_reject(
        proposal=proposal, actor=owner, note="Still holds: PR 12 was reverted."
    )
    assert Record.objects.get(pk=guardrail.pk).status == "accepted"
    with pytest.raises(Conflict):
        services.proposal_accept(proposal=proposal, actor=owner)


def test_accepting_a_new_record_creates_a_draft_owned_by_the_approver(agent_token, owner):
    token, _ = agent_token
    proposal = services.proposal_new_record(
        token=token,
        space="payments",
        kind="constraint",
        title="Refunds go through the ledger",
        anchors=["services/billing/refunds/**"],
    )
    done = services.proposal_accept(
        proposal=proposal, actor=owner, edits={"summary": "Never refund outside the ledger."}
    )
    record = done.result_record
    assert (record.kind, record.status, record.owner_user) == ("constraint", "draft", owner)
    assert record.summary == "Never refund outside the ledger."
    first = record.revisions.get()
    assert first.action == Revision.Action.CREATE
    assert "edited and accepted by" in first.message and "Billing bot" in first.message


def test_rest_proposals_create_list_and_read_back_the_reject_note(agent_token, guardrail, owner):
    _, plain = agent_token
    client = _client(plain)
    created = client.post(
        "/api/v1/proposals/",
        {
            "kind": "update",
            "key": guardrail.key,
            "base_version": guardrail.version,
            "changes": {"summary": "Retry with the same key."},
            "rationale": "Summary was empty.",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["status"] == "pending"

    listed = client.get("/api/v1/proposals/")
    assert [p["id"] for p in listed.json()["results"]] == [pk]

    services.proposal_reject(
        proposal=Proposal.objects.get(pk=pk), actor=owner, note="Summary is on purpose empty."
    )
    back = client.get(f"/api/v1/proposals/{pk}/").json()
    assert back["status"] == "rejected"
    assert back["review_note"] == "Summary is on purpose empty."


def test_rest_bad_proposals_get_the_standard_error_shape(agent_token, guardrail):
    _, plain = agent_token
    client = _client(plain)
    secret = client.post(
        "/api/v1/proposals/",
        {"kind": "new", "title": "Keys", "body": SECRET_BODY},
        format="json",
    )
    assert secret.status_code == 400
    assert secret.json()["error"]["code"] == "secret_detected"
    stale = client.post(
        "/api/v1/proposals/",
        {"kind": "update", "key": guardrail.key, "base_version": 99, "changes": {"title": "x"}},
        format="json",
    )
    assert stale.status_code == 400 and "base_version" in stale.json()["error"]["details"]
    unknown = client.post(
        "/api/v1/proposals/",
        {"kind": "update", "key": guardrail.key, "changes": {"status": "deprecated"}},
        format="json",
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid"
    assert not Proposal.objects.exists()


def test_a_person_token_cannot_propose_and_an_agent_token_cannot_edit(
    agent_token, guardrail, owner
):
    _, person = make_token(owner, scope="read_write")
    refused = _client(person).post(
        "/api/v1/proposals/", {"kind": "new", "title": "x"}, format="json"
    )
    assert refused.status_code == 403
    assert "registered agents" in refused.json()["error"]["message"]
    token, plain = agent_token
    # Even allowed the records scope, the agent's token is read-only: its writes are proposals.
    services.agent_update(
        agent=token.agent,
        actor=token.agent.created_by,
        spaces=list(token.agent.spaces.all()),
        allowed_scopes=["records", "proposals"],
    )
    edit = _client(plain).patch(
        f"/api/v1/records/{guardrail.pk}/",
        {"title": "Edited by a bot"},
        format="json",
        HTTP_IF_MATCH=f'"{guardrail.version}"',
    )
    assert edit.status_code == 403
    assert Record.objects.get(pk=guardrail.pk).title == "Never retry a charge twice"
    assert not AuditEvent.objects.filter(kind="agent_refused").exists()

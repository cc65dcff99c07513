"""Escalations: the guardrail's contact gets exactly one email, whatever the retries; a tool or
anchor outside the agent's declaration is refused and audited."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from apps.agents import scope, services, tasks
from apps.agents.models import Escalation, Proposal
from apps.agents.scope import AgentOutOfScope
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput
from tests.factories import TeamFactory, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def guardrail(space, owner):
    return make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never retry a charge twice",
        anchors=["services/billing/**"],
        status="accepted",
    )


def test_one_email_to_the_guardrails_team_however_often_the_call_and_the_task_repeat(
    agent_token, space, owner, teammate, smtp_inbox, django_capture_on_commit_callbacks
):
    token, _ = agent_token
    team = TeamFactory(name="Payments core")
    team.members.set([owner, teammate])
    guardrail = make_record(
        space=space,
        actor=owner,
        owner_team=team,
        kind="guardrail",
        title="Refunds only through the ledger",
        anchors=["services/billing/refunds/**"],
        status="accepted",
    )
    call = {
        "token": token,
        "guardrail_key": guardrail.key,
        "action": "Refund order 42 directly through the provider",
        "why": "The ledger service is down and the customer is waiting.",
    }
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = services.escalation_create(**call)
    assert created and len(callbacks) == 1
    # The same call retried (no idempotency key): the same escalation within the window.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=1)):
        again, created_again = services.escalation_create(**call)
    assert again.pk == first.pk and not created_again
    assert first.contact_label == "team Payments core"

    assert tasks.send_escalation.run(first.pk) == "sent"
    assert tasks.send_escalation.run(first.pk) == "not claimed"  # a redelivered task
    [message] = smtp_inbox.messages
    assert sorted(a.strip() for a in message["To"].split(",")) == sorted(
        [owner.email, teammate.email]
    )
    text, html = smtp_inbox.parts(message)
    assert "Refund order 42 directly through the provider" in text
    assert "The ledger service is down" in html
    assert Escalation.objects.count() == 1


def test_an_idempotency_key_makes_a_retry_the_same_escalation(agent_token, guardrail):
    token, _ = agent_token
    first, _ = services.escalation_create(
        token=token, guardrail_key=guardrail.key, action="a", why="b", idempotency_key="k-1"
    )
    again, created = services.escalation_create(
        token=token,
        guardrail_key=guardrail.key,
        action="a, reworded",
        why="b",
        idempotency_key="k-1",
    )
    assert again.pk == first.pk and not created
    with pytest.raises(InvalidInput):
        services.escalation_create(token=token, guardrail_key=guardrail.key, action="", why="b")


def test_a_tool_the_agent_was_not_given_is_refused_and_audited(agent_token):
    token, _ = agent_token
    with pytest.raises(AgentOutOfScope) as refused:
        scope.check_call(token, door="mcp", operation="assess_change")
    assert "may not use the MCP tool 'assess_change'" in refused.value.message
    event = AuditEvent.objects.get(kind="agent_refused")
    assert event.details["tool"] == "assess_change" and event.token == token


def test_a_proposal_on_a_record_or_anchors_outside_its_paths_is_refused(agent_token, space, owner):
    token, _ = agent_token
    auth = make_record(
        space=space, actor=owner, kind="guardrail", title="Sessions", anchors=["services/auth/**"]
    )
    with pytest.raises(AgentOutOfScope):
        services.proposal_update(token=token, key=auth.key, changes={"title": "Sessions!"})
    with pytest.raises(AgentOutOfScope):
        services.proposal_new_record(
            token=token, space=space.slug, kind="decision", title="x", anchors=["services/**"]
        )
    assert not Proposal.objects.exists()
    assert AuditEvent.objects.filter(kind="agent_refused").count() == 2

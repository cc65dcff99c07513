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


def test_a_retry_a_minute_later_across_a_quarter_hour_is_the_same_escalation(
    agent_token, guardrail
):
    """The window slides: a call at 03:59:30 retried at 04:00:30 is one escalation (CI once ran
    the test above at 03:59 and got two), while the same call 16 minutes on is a new one."""
    token, _ = agent_token
    call = {"token": token, "guardrail_key": guardrail.key, "action": "Refund", "why": "Down"}
    start = dt.datetime(2026, 12, 7, 3, 59, 30, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        first, created = services.escalation_create(**call)
    with time_machine.travel(start + dt.timedelta(minutes=1), tick=False):
        again, created_again = services.escalation_create(**call)
    assert created and not created_again and again.pk == first.pk
    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False):
        later, created_later = services.escalation_create(**call)
    assert created_later and later.pk != first.pk
    assert Escalation.objects.count() == 2


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

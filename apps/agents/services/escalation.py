"""An agent escalates on a guardrail: recorded once, mailed once to whoever answers for it."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, Team, User
from apps.agents.models import Agent, Escalation
from apps.agents.services.checks import agent_for, clean_text, space_for, visible_record
from apps.core import secret_scan
from apps.core.errors import InvalidInput
from apps.core.links import absolute_url
from apps.records.models import Record

MAX_ACTION = 2_000
# The same escalation sent again within this window is the same escalation (retries).
ESCALATION_WINDOW = dt.timedelta(minutes=15)


def _answering(user: User | None, team: Team | None) -> tuple[str, list[User]] | None:
    """The person if active, else the team's active members, else None."""
    if user is not None and user.is_active:
        return str(user), [user]
    if team is not None:
        people = [u for u in team.members.all() if u.is_active]
        if people:
            return f"team {team}", people
    return None


def escalation_contact(record: Record, agent: Agent | None) -> tuple[str, list[User]]:
    """Who answers for a guardrail: its owner (a person or a team), else the agent's escalation
    contact, else the agent's accountable person. (label, active people with an email)."""
    contact = _answering(record.owner_user, record.owner_team)
    if contact is None and agent is not None:
        contact = _answering(agent.escalation_user, agent.escalation_team) or (
            str(agent.accountable),
            [agent.accountable],
        )
    return contact or ("", [])


def _dedupe_key(
    idempotency_key: str | None,
    *,
    record: Record,
    action: str,
    why: str,
    now: dt.datetime,
    window_back: int = 0,
) -> str:
    """The escalation's unique key: its idempotency key, or its guardrail, action and reason in
    the ESCALATION_WINDOW-long period holding `now` (`window_back` periods earlier)."""
    if idempotency_key:
        return "key:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:64]
    window = int(now.timestamp() // ESCALATION_WINDOW.total_seconds()) - window_back
    raw = f"{record.pk}\n{' '.join(action.split())}\n{' '.join(why.split())}\n{window}"
    return "auto:" + hashlib.sha256(raw.encode()).hexdigest()[:64]


def _earlier(
    agent: Agent, key: str, *, idempotency_key: str | None, record: Record, action: str, why, now
) -> Escalation | None:
    """The same escalation made before: same idempotency key, or same content less than
    ESCALATION_WINDOW ago. `key` is this period's; the previous period's is asked too, so a
    retry a minute later that crosses a period boundary is still the same escalation (anything
    under this period's key is less than a window old by construction)."""
    if idempotency_key:
        return Escalation.objects.filter(agent=agent, dedupe_key=key).first()
    before = _dedupe_key(None, record=record, action=action, why=why, now=now, window_back=1)
    return (
        Escalation.objects.filter(
            agent=agent, dedupe_key__in=[key, before], created_at__gt=now - ESCALATION_WINDOW
        )
        .order_by("created_at")
        .first()
    )


def _clean_request(action: str, why: str, idempotency_key: str | None) -> tuple[str, str]:
    """The escalation's action and reason, checked (with its idempotency key) and stripped."""
    action = clean_text(action, field="action", limit=MAX_ACTION)
    why = clean_text(why, field="why", limit=MAX_ACTION)
    if not action or not why:
        raise InvalidInput(
            "Say what you were about to do (action) and why you are asking (why).",
            details={"action" if not action else "why": ["Required."]},
        )
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200
    ):
        raise InvalidInput(
            "idempotency_key must be text of at most 200 characters.",
            details={"idempotency_key": ["Invalid."]},
        )
    secret_scan.refuse_secrets({"action": action, "why": why}, what="escalation's")
    return action, why


def escalation_create(
    *,
    token: ApiToken,
    guardrail_key: str,
    action: str,
    why: str,
    space: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Escalation, bool]:
    """Record an escalation and (the first time only) send its email after commit. The same
    call retried — same idempotency key, or same guardrail, action and reason within
    ESCALATION_WINDOW — returns the first escalation and sends nothing more."""
    agent = agent_for(token)
    target = space_for(agent, token, space)
    action, why = _clean_request(action, why, idempotency_key)
    record = visible_record(agent, token, key=guardrail_key, space=target)
    if record.kind not in (Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT):
        raise InvalidInput(
            f"{record.key} is a {record.kind}; escalate on a guardrail or constraint.",
            details={"guardrail_key": ["Not a guardrail."]},
        )
    now = timezone.now()
    key = _dedupe_key(idempotency_key, record=record, action=action, why=why, now=now)
    existing = _earlier(
        agent, key, idempotency_key=idempotency_key, record=record, action=action, why=why, now=now
    )
    if existing is not None:
        return existing, False
    label, people = escalation_contact(record, agent)
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                agent=agent,
                guardrail=record,
                action=action,
                reason=why,
                dedupe_key=key,
                contact_label=label,
                recipients=[u.email for u in people if u.email],
                created_at=now,
            )
            from apps.agents import tasks

            transaction.on_commit(lambda: tasks.send_escalation.delay(escalation.pk))
            _chat_escalation(escalation)
    except IntegrityError:
        # The same call, retried at the same moment: the other one created it.
        return Escalation.objects.get(agent=agent, dedupe_key=key), False
    return escalation, True


def _chat_escalation(escalation: Escalation) -> None:
    """An escalation also goes to the guardrail's space channel at once (the email goes to its
    contact); one notice per escalation, whatever the retries."""
    from apps.chat import services as chat

    record = escalation.guardrail
    chat.notify(
        space=record.space,
        title=f"Agent {escalation.agent.name} escalates on {record.key}"[:150],
        text=f"About to: {escalation.action}\nWhy: {escalation.reason}",
        key=f"escalation-{escalation.pk}",
        user=record.owner_user,
        links=[("Open the guardrail", absolute_url(record.get_absolute_url()))],
    )


def escalation_claim(*, escalation_id: int) -> Escalation | None:
    """Claim the right to send (a conditional UPDATE): one sender, however often the task runs."""
    claimed = Escalation.objects.filter(pk=escalation_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return None
    return (
        Escalation.objects.select_related("agent", "guardrail__space")
        .filter(pk=escalation_id)
        .first()
    )


def escalation_unclaim(*, escalation_id: int) -> None:
    """Sending failed: let the retry claim it again."""
    Escalation.objects.filter(pk=escalation_id).update(notified_at=None)

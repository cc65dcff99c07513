"""Real parts end to end: the official MCP client (Streamable HTTP, uvicorn) as a registered
agent; a Celery worker process sends the escalation and the owner's digest to an aiosmtpd
server; the owner accepts the proposal on its review page; the record's revision credits both.
"""

import asyncio
import re
import time

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from apps.agents import services
from apps.agents.models import Escalation, Proposal
from apps.audit.models import AuditEvent
from apps.records.models import Record
from apps.reminders import tasks as reminder_tasks
from tests.factories import make_record
from tests.live import live_contextkb
from tests.reminders.test_integration import smtp  # noqa: F401 - the aiosmtpd fixture
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(smtp, live_server, transactional_db):  # noqa: F811
    """A `celery -A contextkb worker` on a private queue, which this process's tasks (the
    escalation email, usage log entries) are sent to as well."""
    from contextkb.celery import app

    controller, _ = smtp
    previous = app.conf.task_default_queue
    with celery_worker(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(controller.port),
        SMTP_STARTTLS="false",
        CONTEXTKB_SITE_URL=live_server.url,
        REMINDERS_DIGEST_HOUR="0",
        LOG_FORMAT="text",
    ) as queue:
        app.conf.task_default_queue = queue
        try:
            yield queue
        finally:
            app.conf.task_default_queue = previous


@pytest.fixture
def live_mcp(transactional_db):
    """contextkb (Django + MCP at /mcp) under uvicorn, in a thread."""
    with live_contextkb() as url:
        yield url


def _mcp(url: str, plain: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {plain}"})
    return Client(streamable_http_client(url + "/mcp", http_client=http))


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_agent_proposal_goes_from_mcp_to_the_digest_to_an_accepted_revision(
    smtp,  # noqa: F811
    worker,
    live_server,
    live_mcp,
    space,
    owner,
    admin_user,
    client,
):
    _, inbox = smtp
    guardrail = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never retry a charge twice",
        body="Use the idempotency key of the first attempt.",
        anchors=["services/billing/**"],
        status="accepted",
    )
    agent = services.agent_create(
        actor=admin_user,
        name="Billing bot",
        purpose="Keeps the billing service's retries tidy.",
        accountable=owner,
        spaces=[space],
        path_globs=["services/billing/**"],
    )
    _, plain = services.agent_token_create(agent=agent, actor=admin_user, name="ci")

    async def scenario():
        async with _mcp(live_mcp, plain) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            guards = _text(
                await mcp.call_tool(
                    "guardrails_for_paths", {"paths": ["services/billing/charge.py"]}
                )
            )
            outside = await mcp.call_tool(
                "guardrails_for_paths", {"paths": ["services/auth/login.py"]}
            )
            proposed = _text(
                await mcp.call_tool(
                    "propose_update",
                    {
                        "key": guardrail.key,
                        "base_version": 1,
                        "changes": {
                            "body": "Use the idempotency key of the first attempt for 24 hours."
                        },
                        "rationale": "The payment provider expires keys after a day.",
                    },
                )
            )
            escalation = {
                "guardrail_key": guardrail.key,
                "action": "Retry charge ch_123 with a new idempotency key",
                "why": "The first attempt timed out and its key expired.",
                "idempotency_key": "retry-ch_123",
            }
            first = _text(await mcp.call_tool("escalate", escalation))
            again = _text(await mcp.call_tool("escalate", escalation))
            return names, guards, outside, proposed, first, again

    names, guards, outside, proposed, first, again = asyncio.run(scenario())

    assert {"propose_record", "propose_update", "flag_outdated", "escalate"} <= names
    assert "Never retry a charge twice" in guards
    assert f"- {guardrail.key}: {owner}" in guards  # its escalation contact
    assert outside.is_error
    assert "'services/auth/login.py' is outside its paths" in _text(outside)
    assert AuditEvent.objects.filter(kind="agent_refused", details__agent=agent.slug).exists()
    proposal = Proposal.objects.get()
    assert f"Proposal #{proposal.pk}" in proposed
    assert "notified by email now" in first and "not sent again" in again
    assert Escalation.objects.count() == 1
    # Nothing changed yet: an agent never edits.
    assert Record.objects.get(pk=guardrail.pk).version == 1

    # The escalation email goes out at once, once.
    wait_for(lambda: inbox.messages, timeout=90.0, what="the escalation email")
    [escalated] = inbox.messages
    assert escalated["To"] == owner.email
    assert (
        escalated["Subject"]
        .strip()
        .startswith(f"Agent Billing bot asks before crossing {guardrail.key}")
    )
    assert "Retry charge ch_123" in escalated.get_body(preferencelist=("plain",)).get_content()

    # The beat plans the digests: the owner's lists the proposal with its review link.
    reminder_tasks.plan_digests.apply_async(queue=worker)
    wait_for(lambda: len(inbox.messages) >= 2, timeout=90.0, what="the digest email")
    digest = inbox.messages[1]
    assert digest["To"] == owner.email
    assert (
        digest["Subject"]
        .strip()
        .startswith(f"1 agent proposal to review — #{proposal.pk} {guardrail.key}")
    )
    text = digest.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = digest.get_body(preferencelist=("html",)).get_content()
    assert f"#{proposal.pk} Change to a record: {guardrail.key}" in text
    [review_url] = re.findall(r"Review: (\S+)", text)
    assert review_url == f"{live_server.url}/proposals/{proposal.pk}/"
    assert f'href="{review_url}"' in html
    time.sleep(1)
    assert len(inbox.messages) == 2  # the retried escalation sent nothing more

    # The owner opens the link and accepts.
    client.force_login(owner)
    path = review_url.removeprefix(live_server.url)
    page = client.get(path)
    assert page.status_code == 200
    assert "The payment provider expires keys after a day." in page.text
    accepted = client.post(
        path,
        {
            "action": "accept",
            "title": guardrail.title,
            "summary": "",
            "body": "Use the idempotency key of the first attempt for 24 hours.",
            "seen_version": "1",
            "note": "Thanks.",
        },
    )
    assert accepted.status_code == 302
    record = Record.objects.get(pk=guardrail.pk)
    assert record.body == "Use the idempotency key of the first attempt for 24 hours."
    revision = record.revisions.order_by("-number").first()
    assert revision.author == owner
    assert revision.message == (
        f"Proposed by agent Billing bot (proposal #{proposal.pk}), accepted by {owner}"
    )
    assert Proposal.objects.get().status == "accepted"

    # The agent's page shows its escalation and proposal.
    client.force_login(admin_user)
    agent_page = client.get(f"/agents/{agent.slug}/").text
    assert "Retry charge ch_123" in agent_page
    assert f"#{proposal.pk} Change to a record" in agent_page

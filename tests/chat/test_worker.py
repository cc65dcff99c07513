"""Real parts end to end: a Celery worker process plans and sends chat digests to a local HTTP
sink standing in for Slack (incoming webhook) and Teams (workflow webhook). Each message arrives
once with the documented payload, also when the first attempt gets a 500 and is retried; the
Teams card's signed link and the Slack button (a signed interactive callback) each verify a
record against the live server."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from django.utils import timezone

from apps.chat import services as chat
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery, HealthSnapshot
from tests.chat.conftest import SIGNING_SECRET, block_actions, slack_request
from tests.factories import MembershipFactory, SpaceFactory, make_record
from tests.workers import celery_worker, wait_for


@pytest.fixture
def worker(sink, live_server, transactional_db):
    with celery_worker(
        CONTEXTKB_SITE_URL=live_server.url,
        REMINDERS_DIGEST_HOUR="0",
        REMINDERS_RETRY_BASE_SECONDS="1",
        CHAT_ALLOW_HTTP="true",
        CHAT_WEBHOOK_HOSTS="127.0.0.1",
        CHAT_TIMEOUT_SECONDS="3",
        CHAT_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        LOG_FORMAT="text",
    ) as queue:
        yield queue


def test_worker_posts_each_chat_digest_once_across_a_500_and_its_buttons_verify(
    sink, worker, live_server, space, owner
):
    settings_url = live_server.url
    platform = SpaceFactory(name="Platform", slug="platform")
    MembershipFactory(space=platform, user=owner, role="editor")
    old = timezone.now() - dt.timedelta(days=75)
    on_slack = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=old,
    )
    on_teams = make_record(
        space=platform,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Deploys need a rollback plan",
        now=old,
    )
    reminders.sweep(full=True)
    chat.channel_save(
        space=space,
        actor=owner.__class__.objects.create_superuser("root", "r@x.test", "pw"),
        platform="slack_webhook",
        webhook_url=f"{sink.url}/services/T0/B0/secretslack",
    )
    root = owner.__class__.objects.get(username="root")
    chat.channel_save(
        space=platform,
        actor=root,
        platform="teams",
        webhook_url=f"{sink.url}/workflows/abc/triggers/manual/paths/invoke?sig=secretteams",
    )
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    sink.script["/services/T0/B0/secretslack"] = [(500, "internal_error")]

    tasks.plan_digests.apply_async(queue=worker)
    wait_for(
        lambda: (
            sink.accepted("/services/T0/B0/secretslack")
            and sink.accepted("/workflows/abc/triggers/manual/paths/invoke?sig=secretteams")
        ),
        what="both chat messages",
    )
    # The beat fires again and the old send tasks are redelivered: nothing new goes out.
    tasks.plan_digests.apply_async(queue=worker)
    for delivery in Delivery.objects.all():
        tasks.send_delivery.apply_async(args=[delivery.pk], queue=worker)
    tasks.snapshot.apply_async(queue=worker)
    wait_for(lambda: HealthSnapshot.objects.exists(), what="the worker to finish its queue")
    time.sleep(1.5)

    slack_path = "/services/T0/B0/secretslack"
    teams_path = "/workflows/abc/triggers/manual/paths/invoke?sig=secretteams"
    assert [r["status"] for r in sink.on(slack_path)] == [500, 200]  # failed once, retried once
    assert [r["status"] for r in sink.on(teams_path)] == [200]
    # Chat only, and both spaces have a channel: no email row.
    rows = {d.space.slug: d for d in Delivery.objects.select_related("space")}
    assert set(rows) == {"payments", "platform"}
    assert all(d.channel == "chat" and d.status == "sent" for d in rows.values())
    assert rows["payments"].attempts == 2 and rows["platform"].attempts == 1

    # Slack: Block Kit as documented for incoming webhooks.
    slack = sink.accepted(slack_path)[0]["json"]
    assert slack["text"] == "1 record to review in Payments"
    header, intro, section, actions, footer = slack["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "1 record to review in Payments", "emoji": True},
    }
    assert intro["text"]["text"].startswith("<@U0OWNER1> ")
    assert "|GRD-1 Never log card numbers>*" in section["text"]["text"]
    assert "Review overdue by 15 days" in section["text"]["text"]
    still_true, needs_change, not_mine = actions["elements"]
    assert (still_true["type"], still_true["text"]["text"], still_true["style"]) == (
        "button",
        "Still true",
        "primary",
    )
    assert needs_change["url"].startswith(settings_url) and "url" not in still_true
    assert not_mine["text"]["text"] == "Not mine" and not_mine["value"]
    assert footer["type"] == "context"

    # Teams: an Adaptive Card attachment, as the Workflows webhook expects.
    teams = sink.accepted(teams_path)[0]["json"]
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "1 record to review in Platform"
    buttons = card["body"][2]["items"][-1]["actions"]
    assert [b["title"] for b in buttons] == ["Still true", "Needs change", "Not mine"]
    assert all(b["type"] == "Action.OpenUrl" for b in buttons)

    # The Teams card's "Still true" is the email's signed link: it works on the live server.
    with httpx.Client(timeout=10) as http:
        assert "Is GRD-1 still true?" in http.get(buttons[0]["url"]).text
        assert http.post(buttons[0]["url"]).status_code == 200
    assert Record.objects.get(pk=on_teams.pk).freshness == "fresh"

    # The Slack button: Slack posts a signed callback to the interactivity URL.
    body, headers = slack_request(block_actions(value=still_true["value"]))
    with httpx.Client(timeout=10) as http:
        answer = http.post(
            f"{live_server.url}/chat/slack/interactivity",
            content=body,
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 200, answer.text
    assert "GRD-1 is verified as still true" in answer.json()["text"]
    record = Record.objects.get(pk=on_slack.pk)
    assert record.freshness == "fresh"
    assert record.verifications.get().actor == owner

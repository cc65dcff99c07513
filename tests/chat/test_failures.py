"""A chat endpoint that answers 4xx or 5xx or does not answer: the delivery shows the failure,
worded for a space admin, on the space's Chat page and in the admin's Deliveries, and "Send
again" sends it once. The webhook URL and the bot token never appear in errors, pages or logs."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.chat import services as chat
from apps.chat.transport import SendError
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.factories import UserFactory, make_record

HOOK = "/services/T0/B0/verysecretpath"


@pytest.fixture
def setup(sink, space, owner, admin_user):
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    chat.channel_save(
        space=space, actor=admin_user, platform="slack_webhook", webhook_url=sink.url + HOOK
    )
    chat.preference_set(user=owner, notify_by="both")
    return sink


def _plan_chat(owner) -> Delivery:
    queued = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    # "Both": an email row and a chat row, planned in the same run.
    assert sorted(Delivery.objects.values_list("channel", flat=True)) == ["chat", "email"]
    return Delivery.objects.get(channel="chat")


@pytest.mark.parametrize(
    ("answer", "status", "shown"),
    [
        (
            (404, "no_service"),
            "gave_up",
            "Slack refused the message (HTTP 404: no_service). The webhook was probably revoked",
        ),
        ((410, "channel_is_archived"), "gave_up", "HTTP 410: channel_is_archived"),
        (
            (400, "invalid_blocks"),
            "gave_up",
            "Slack refused the message (HTTP 400: invalid_blocks).",
        ),
        ((503, "service unavailable"), "failed", "Slack answered HTTP 503: service unavailable."),
        (("sleep", 2.5), "failed", "Slack did not answer within 1.0 s."),
    ],
)
def test_a_failing_endpoint_shows_in_deliveries_and_send_again_sends_once(
    client, setup, owner, admin_user, answer, status, shown, caplog
):
    sink = setup
    delivery = _plan_chat(owner)
    sink.script[HOOK] = [answer]
    caplog.set_level(logging.DEBUG)
    if status == "failed":
        with pytest.raises(SendError):  # outside a worker, Celery's retry re-raises
            tasks.send_delivery.run(delivery.pk)
    else:
        assert tasks.send_delivery.run(delivery.pk) == "gave up"  # no retry can fix a 4xx
    delivery.refresh_from_db()
    assert delivery.status == status
    assert shown in delivery.last_error
    assert "verysecretpath" not in delivery.last_error
    assert "verysecretpath" not in caplog.text

    # The space admin sees it on the space's Chat page, with Send again.
    client.force_login(admin_user)
    page = client.get("/s/payments/chat/").content.decode()
    assert shown.split(" (")[0] in page and "Send again" in page
    assert "verysecretpath" not in page
    queued = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            for _ in range(2):  # an impatient double click
                client.post("/s/payments/chat/", {"action": "send_again", "delivery": delivery.pk})
    assert queued == [delivery.pk]
    before = len(sink.accepted(HOOK))
    assert [tasks.send_delivery.run(pk) for pk in queued + queued] == ["sent", "not claimed"]
    assert len(sink.accepted(HOOK)) == before + 1
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"


def test_failures_show_in_the_admin_deliveries_list_with_send_again(client, setup, owner):
    sink = setup
    delivery = _plan_chat(owner)
    sink.script[HOOK] = [(403, "action_prohibited")]
    assert tasks.send_delivery.run(delivery.pk) == "gave up"
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    listing = client.get("/admin/reminders/delivery/?channel__exact=chat").content.decode()
    assert "Slack refused the message (HTTP 403: action_prohibited)" in listing
    assert "Failed (gave up)" in listing and "Send again" in listing
    assert "verysecretpath" not in listing


def test_a_bot_token_channel_posts_with_chat_postmessage_and_reports_slack_errors(
    client, sink, space, owner, admin_user, settings, caplog
):
    settings.CHAT_SLACK_API_URL = sink.url + "/api"
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    token = "xoxb-1111-2222-abcdefsecret"
    chat.channel_save(
        space=space,
        actor=admin_user,
        platform="slack_bot",
        bot_token=token,
        slack_channel="C0123ABCD",
    )
    chat.preference_set(user=owner, notify_by="chat")
    delivery = _plan_chat_only(owner)
    sink.script["/api/chat.postMessage"] = [(200, {"ok": False, "error": "not_in_channel"})]
    caplog.set_level(logging.DEBUG)
    assert tasks.send_delivery.run(delivery.pk) == "gave up"
    delivery.refresh_from_db()
    assert delivery.last_error == (
        "Slack refused the message: not_in_channel. Invite the app to the channel (/invite @app)."
    )
    assert reminders.delivery_retry(ids=[delivery.pk]) == [delivery.pk]
    sink.script["/api/chat.postMessage"] = [(200, {"ok": True, "ts": "1700000000.1"})]
    assert tasks.send_delivery.run(delivery.pk) == "sent"
    [request] = sink.accepted("/api/chat.postMessage")[-1:]
    assert request["headers"]["Authorization"] == f"Bearer {token}"
    assert request["json"]["channel"] == "C0123ABCD"
    assert request["json"]["blocks"][0]["type"] == "header"
    assert token not in caplog.text


def _plan_chat_only(owner) -> Delivery:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    # Chat only, and the only space has a channel: no email.
    [delivery] = Delivery.objects.all()
    assert delivery.channel == "chat"
    return delivery


def test_an_unreachable_endpoint_is_a_clear_failure(client, sink, space, owner, admin_user):
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    chat.channel_save(
        space=space,
        actor=admin_user,
        platform="teams",
        webhook_url=f"http://127.0.0.1:{port}/workflows/x?sig=topsecret",
    )
    chat.preference_set(user=owner, notify_by="chat")
    delivery = _plan_chat_only(owner)
    with pytest.raises(SendError):
        tasks.send_delivery.run(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("Could not reach Teams:")
    assert "topsecret" not in delivery.last_error

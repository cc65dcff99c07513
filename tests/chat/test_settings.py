"""Each person's email/chat choice, a space's channel (admins only, validated, stored sealed and
never shown back), who gets what when the planner runs, and `notify` for one-off messages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.chat import services as chat
from apps.chat.models import ChatChannel, ChatPreference
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.factories import MembershipFactory, SpaceFactory, make_record


def test_a_person_chooses_chat_and_gives_a_slack_member_id(client, owner):
    client.force_login(owner)
    page = client.get("/settings/reminders/").content.decode()
    assert "Send reminders by" in page and "Email and chat" in page
    response = client.post(
        "/settings/reminders/",
        {"digest_frequency": "daily", "notify_by": "both", "slack_user_id": "U0OWNER1"},
    )
    assert response.status_code == 302
    preference = ChatPreference.objects.get(user=owner)
    assert (preference.notify_by, preference.slack_user_id) == ("both", "U0OWNER1")


def test_a_bad_slack_member_id_is_explained_and_nothing_is_saved(client, owner):
    client.force_login(owner)
    response = client.post(
        "/settings/reminders/",
        {"digest_frequency": "weekly", "notify_by": "chat", "slack_user_id": "@owner"},
    )
    assert response.status_code == 200
    assert "A Slack member ID looks like U0123ABCD" in response.content.decode()
    assert not ChatPreference.objects.exists()
    owner.refresh_from_db()
    assert owner.digest_frequency == "daily"  # the whole form was refused


def test_a_space_admin_sets_a_slack_webhook_which_is_stored_sealed_and_never_shown(
    client, space, admin_user
):
    url = "http://127.0.0.1:9/services/T000/B000/XXXXsecretXXXXwxyz"
    client.force_login(admin_user)
    response = client.post(
        "/s/payments/chat/", {"action": "save", "platform": "slack_webhook", "webhook_url": url}
    )
    assert response.status_code == 302
    channel = ChatChannel.objects.get(space=space)
    assert "secret" not in channel.sealed_secret and channel.secret_hint == "wxyz"
    page = client.get("/s/payments/chat/").content.decode()
    assert "Slack (incoming webhook)" in page and "…wxyz" in page
    assert "XXXXsecret" not in page
    # Saved again without the URL (it is never filled in): the stored one stays.
    client.post("/s/payments/chat/", {"action": "save", "platform": "slack_webhook"})
    assert ChatChannel.objects.get(space=space).sealed_secret == channel.sealed_secret


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"platform": "slack_webhook", "webhook_url": "https://intranet.local/hook"},
            "intranet.local is not a Slack webhook host.",
        ),
        ({"platform": "teams", "webhook_url": "ftp://127.0.0.1/x"}, "must start with https://"),
        ({"platform": "teams", "webhook_url": "https://[::1/x"}, "is not a valid URL."),
        (
            {"platform": "teams", "webhook_url": "https://hooks.slack.com:99999/x"},
            "is not a valid URL.",
        ),
        ({"platform": "teams"}, "Enter the Teams webhook URL."),
        (
            {"platform": "slack_bot", "bot_token": "xoxp-user-token", "slack_channel": "C0123"},
            "A Slack bot token starts with xoxb-",
        ),
        (
            {"platform": "slack_bot", "bot_token": "xoxb-1234567890-abc", "slack_channel": "x y"},
            "Give the channel&#x27;s ID",
        ),
        ({"platform": "carrier-pigeon"}, "Select a valid choice"),
    ],
)
def test_bad_channel_settings_are_explained_and_nothing_is_saved(
    client, space, admin_user, settings, data, message
):
    settings.CHAT_ALLOW_HTTP = False
    settings.CHAT_WEBHOOK_HOSTS = ["hooks.slack.com", ".logic.azure.com"]
    client.force_login(admin_user)
    response = client.post("/s/payments/chat/", {"action": "save", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ChatChannel.objects.exists()


def test_only_space_admins_change_the_channel(client, space, owner, outsider):
    client.force_login(owner)  # an editor
    page = client.get("/s/payments/chat/")
    assert page.status_code == 200 and "Only the admins of Payments" in page.content.decode()
    response = client.post(
        "/s/payments/chat/",
        {"action": "save", "platform": "teams", "webhook_url": "http://127.0.0.1:9/x"},
    )
    assert response.status_code == 403
    client.force_login(outsider)
    assert client.get("/s/payments/chat/").status_code == 404
    assert not ChatChannel.objects.exists()


def _stale(space, owner):
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        now=timezone.now() - dt.timedelta(days=400),
    )


def _plan() -> list[tuple[str, str, str | None]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    return sorted(
        (d.kind, d.channel, d.space.slug if d.space else None)
        for d in Delivery.objects.select_related("space")
    )


def test_chat_only_keeps_the_email_while_one_of_the_persons_spaces_has_no_channel(
    space, owner, admin_user
):
    other = SpaceFactory(name="Platform", slug="platform")
    MembershipFactory(space=other, user=owner, role="editor")
    _stale(space, owner)
    _stale(other, owner)
    reminders.sweep(full=True)
    chat.channel_save(
        space=space, actor=admin_user, platform="teams", webhook_url="http://127.0.0.1:9/x"
    )
    chat.preference_set(user=owner, notify_by="chat")
    assert ("digest", "email", None) in _plan()  # Platform has no channel: email too
    assert ("digest", "chat", "payments") in _plan()


def test_escalations_go_to_a_space_channel_once_a_week_however_many_admins(
    sink, space, owner, admin_user
):
    from apps.accounts.models import Membership

    second = MembershipFactory(space=space, role=Membership.Role.ADMIN).user
    record = make_record(
        space=space, actor=owner, kind="guardrail", now=timezone.now() - dt.timedelta(days=400)
    )
    assert record.owner_user_id is None  # orphaned: escalated to the admins
    reminders.sweep(full=True)
    chat.channel_save(
        space=space, actor=admin_user, platform="teams", webhook_url="http://127.0.0.1:9/x"
    )
    chat.preference_set(user=admin_user, notify_by="chat")
    chat.preference_set(user=second, notify_by="chat")
    planned = _plan()
    assert planned.count(("escalation", "chat", "payments")) == 1
    assert ("escalation", "email", None) not in planned  # both chose chat only
    assert _plan() == planned  # the next hourly run adds nothing

    chat.channel_save(
        space=space, actor=admin_user, platform="teams", webhook_url=f"{sink.url}/t?sig=1"
    )
    delivery = Delivery.objects.get(kind="escalation", channel="chat")
    assert tasks.send_delivery.run(delivery.pk) == "sent"
    [request] = sink.accepted("/t?sig=1")
    card = request["json"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "1 record escalated in Payments"
    assert "No owner: assign one from the review queue" in card["body"][2]["items"][1]["text"]
    # Admins get no one-click verify for someone else's record: only "Needs change".
    assert [a["title"] for a in card["body"][2]["items"][-1]["actions"]] == ["Needs change"]


def test_notify_posts_once_per_key(sink, space, owner, admin_user):
    chat.channel_save(
        space=space, actor=admin_user, platform="teams", webhook_url=f"{sink.url}/teams?sig=s"
    )
    queued = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            first = chat.notify(
                space=space,
                user=owner,
                key="proposal-42",
                title="Proposal for DEC-3",
                text="An agent proposes a change to DEC-3. Review it.",
                links=[("Review the proposal", "http://testserver/proposals/42/")],
            )
            again = chat.notify(space=space, key="proposal-42", title="x", text="y")
    assert first is not None and again is None
    assert [tasks.send_delivery.run(pk) for pk in queued + queued] == ["sent", "not claimed"]
    [request] = sink.accepted("/teams?sig=s")
    card = request["json"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Proposal for DEC-3"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Review the proposal",
            "url": "http://testserver/proposals/42/",
        }
    ]
    other = SpaceFactory(slug="nochannel")
    assert chat.notify(space=other, key="k", title="t", text="x") is None


def test_a_notice_whose_task_was_lost_is_sent_by_the_next_planner_run(sink, space, admin_user):
    chat.channel_save(
        space=space, actor=admin_user, platform="teams", webhook_url=f"{sink.url}/teams?sig=s"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)  # the broker lost it
        with TestCase.captureOnCommitCallbacks(execute=True):
            notice = chat.notify(space=space, key="agent-escalation-7", title="t", text="x")
    queued = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    assert queued == [notice.pk]
    assert tasks.send_delivery.run(notice.pk) == "sent"
    assert len(sink.accepted("/teams?sig=s")) == 1


def test_a_test_message_shows_at_once_whether_the_webhook_works(client, sink, space, admin_user):
    chat.channel_save(
        space=space,
        actor=admin_user,
        platform="slack_webhook",
        webhook_url=f"{sink.url}/services/T0/B0/hiddenpart",
    )
    client.force_login(admin_user)
    done = client.post("/s/payments/chat/", {"action": "test"}, follow=True)
    assert "A test message was posted to the Slack channel." in done.content.decode()
    [request] = sink.accepted("/services/T0/B0/hiddenpart")
    assert request["json"]["text"] == "contextkb is connected to Payments"

    sink.script["/services/T0/B0/hiddenpart"] = [(404, "no_service")]
    refused = client.post("/s/payments/chat/", {"action": "test"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "The test message was not delivered: Slack refused the message (HTTP 404" in page
    assert "hiddenpart" not in page

"""Slack's interactivity endpoint: a signed button press acts as the record's owner; a forged,
stale or replayed request is refused and changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time

import pytest
from django.utils import timezone

from apps.chat import services as chat
from apps.records.models import Record, Verification
from apps.reminders import services as reminders
from apps.reminders import tokens
from tests.chat.conftest import SIGNING_SECRET, block_actions, slack_request
from tests.factories import make_record

URL = "/chat/slack/interactivity"


@pytest.fixture
def stale(space, owner):
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    return Record.objects.get(pk=record.pk)


def _press(client, payload, **kwargs):
    body, headers = slack_request(payload, **kwargs)
    return client.generic(
        "POST",
        URL,
        body,
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )


def _token(record, user, action="verify"):
    return tokens.make_link_token(action=action, record_id=record.pk, user_id=user.pk)


def _unchanged(record) -> bool:
    current = Record.objects.get(pk=record.pk)
    return (
        current.freshness == "stale"
        and current.version == record.version
        and not Verification.objects.filter(record=record).exists()
    )


def test_a_signed_still_true_press_verifies_the_record_as_its_owner(client, stale, owner):
    response = _press(client, block_actions(value=_token(stale, owner)))
    assert response.status_code == 200
    assert "GRD-1 is verified as still true" in response.json()["text"]
    record = Record.objects.get(pk=stale.pk)
    assert record.freshness == "fresh"
    verification = record.verifications.get()
    assert verification.actor == owner


def test_a_forged_signature_is_refused_and_changes_nothing(client, stale, owner):
    payload = block_actions(value=_token(stale, owner))
    response = _press(client, payload, secret="not-the-signing-secret")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The Slack signature does not match; refused."
    # Unsigned, or with the body changed after signing: the same.
    body, headers = slack_request(payload)
    tampered = body.replace(b"U0OWNER1", b"U0OTHER2")
    answer = client.generic(
        "POST", URL, tampered, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert answer.status_code == 401
    assert client.post(URL, {"payload": "{}"}).status_code == 401
    assert _unchanged(stale)


def test_a_request_older_than_five_minutes_is_refused(client, stale, owner):
    response = _press(
        client, block_actions(value=_token(stale, owner)), timestamp=int(time.time()) - 301
    )
    assert response.status_code == 401
    assert "five minutes" in response.json()["error"]["message"]
    assert _unchanged(stale)


def test_a_replayed_request_is_refused_and_changes_nothing(client, stale, owner, space):
    # Replayed first against a press that changed nothing (not the owner's Slack account),
    # so the refusal is the replay check's, not the single-use link's.
    token = _token(stale, owner)
    body, headers = slack_request(block_actions(value=token, user_id="U0SOMEONE"))
    first = client.generic(
        "POST", URL, body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert first.status_code == 200
    assert "Nothing was changed" in first.json()["text"]
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0SOMEONE")
    again = client.generic(
        "POST", URL, body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "replayed"
    assert _unchanged(stale)

    # A differently signed request that carries an interaction Slack already delivered
    # (same trigger_id) is refused too.
    later = _press(
        client, block_actions(value=token, user_id="U0SOMEONE"), timestamp=int(time.time()) - 5
    )
    assert later.status_code == 409
    assert _unchanged(stale)


def test_the_button_acts_only_for_the_owners_slack_account(client, stale, owner):
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="")
    response = _press(client, block_actions(value=_token(stale, owner), trigger_id="t-1"))
    assert response.status_code == 200
    assert "your Slack account is not theirs" in response.json()["text"]
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    response = _press(
        client,
        block_actions(value=_token(stale, owner), user_id="U0INTRUDER", trigger_id="t-2"),
    )
    assert "Nothing was changed" in response.json()["text"]
    assert _unchanged(stale)


def test_a_used_button_and_a_bad_token_change_nothing(client, stale, owner):
    token = _token(stale, owner)
    assert _press(client, block_actions(value=token, trigger_id="t-1")).status_code == 200
    verified = Record.objects.get(pk=stale.pk)
    again = _press(client, block_actions(value=token, trigger_id="t-2"))
    assert again.status_code == 200
    assert again.json()["text"] == "This button was already used. Nothing was changed."
    bad = _press(client, block_actions(value=token[:-3] + "xyz", trigger_id="t-3"))
    assert bad.json()["text"] == "This button is not valid. Nothing was changed."
    assert Record.objects.get(pk=stale.pk).version == verified.version
    assert Verification.objects.filter(record=stale).count() == 1


def test_not_mine_hands_the_record_back_to_the_space_admins(client, stale, owner):
    response = _press(
        client, block_actions(value=_token(stale, owner, "not_mine"), action_id="not_mine:0")
    )
    assert response.status_code == 200
    assert "went back to the admins of Payments" in response.json()["text"]
    assert Record.objects.get(pk=stale.pk).owner_user_id is None


def test_a_url_button_press_is_acknowledged_and_changes_nothing(client, stale, owner):
    response = _press(client, block_actions(value="", action_id="needs_change:0"))
    assert response.status_code == 200
    assert _unchanged(stale)


def test_bad_bodies_get_a_clear_400_and_an_unconfigured_server_refuses(
    client, stale, owner, settings
):
    garbage = b"payload=%7Bnot+json"
    ts = str(int(time.time()))
    signature = (
        "v0="
        + hmac.new(
            SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + garbage, hashlib.sha256
        ).hexdigest()
    )
    response = client.generic(
        "POST",
        URL,
        garbage,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The body is not a Slack interaction payload."

    settings.CHAT_SLACK_SIGNING_SECRET = ""
    response = _press(client, block_actions(value=_token(stale, owner)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_configured"
    assert _unchanged(stale)
    assert client.get(URL).status_code == 405


def test_the_presser_is_told_the_result_through_the_response_url(client, sink, stale, owner):
    from django.test import TestCase

    from apps.chat import tasks as chat_tasks

    payload = block_actions(value=_token(stale, owner), response_url=f"{sink.url}/actions/T0/1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chat_tasks.slack_reply, "delay", chat_tasks.slack_reply.run)
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert _press(client, payload).status_code == 200
    [reply] = sink.accepted("/actions/T0/1")
    assert reply["json"]["response_type"] == "ephemeral"
    assert reply["json"]["replace_original"] is False
    assert reply["json"]["text"].startswith("Thanks: GRD-1 is verified as still true")


def test_a_response_url_off_the_allowed_hosts_is_not_called(settings):
    from apps.chat import tasks as chat_tasks

    settings.CHAT_WEBHOOK_HOSTS = ["hooks.slack.com"]
    assert chat_tasks.slack_reply.run("http://169.254.169.254/latest/meta-data", "hi") is False


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": "U0OWNER1", "actions": "still_true"},
        {"type": "block_actions", "user": None, "actions": [None, 3, {"action_id": 7}]},
        {"type": "view_submission", "trigger_id": ["x"]},
        [],
    ],
)
def test_odd_payloads_change_nothing_and_never_fail(client, stale, payload):
    body, headers = slack_request(payload)
    response = client.generic(
        "POST", URL, body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert response.status_code in (200, 400)
    assert _unchanged(stale)

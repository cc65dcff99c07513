"""Cross-checks with Slack's own SDK: the Block Kit a digest posts parses and validates with
slack_sdk's block models (round trip, no unknown fields, within Slack's limits), and a request
signed by slack_sdk's SignatureVerifier passes the interactivity endpoint's check."""

from __future__ import annotations

import datetime as dt
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import TestCase
from django.utils import timezone
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

from apps.chat import services as chat
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.chat.conftest import SIGNING_SECRET, block_actions, slack_request
from tests.factories import make_record


def _sent_payload(sink, space, owner, admin_user, records: int) -> dict:
    for n in range(records):
        make_record(
            space=space,
            actor=owner,
            owner_user=owner,
            kind="guardrail",
            title=f'Rule {n}: <never> log "card" numbers & *secrets*',
            now=timezone.now() - dt.timedelta(days=75 + n),
        )
    reminders.sweep(full=True)
    chat.channel_save(
        space=space,
        actor=admin_user,
        platform="slack_webhook",
        webhook_url=f"{sink.url}/services/T0/B0/x",
    )
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    [delivery] = Delivery.objects.filter(channel="chat")
    assert tasks.send_delivery.run(delivery.pk) == "sent"
    return sink.accepted("/services/T0/B0/x")[0]["json"]


@pytest.mark.parametrize("records", [1, 30])
def test_the_digest_is_block_kit_that_slacks_sdk_accepts(sink, space, owner, admin_user, records):
    payload = _sent_payload(sink, space, owner, admin_user, records)
    blocks = payload["blocks"]
    assert len(blocks) <= 50  # Slack's limit per message
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises on a field past Slack's limits
        assert parsed.to_dict() == block  # nothing the SDK does not know
    # Titles are escaped for mrkdwn: no stray link or mention syntax.
    assert '&lt;never&gt; log "card" numbers &amp; *secrets*' in blocks[2]["text"]["text"]
    if records == 30:
        assert blocks[-2]["text"]["text"] == "And 10 more in your review queue."


def test_a_request_signed_by_slacks_sdk_is_accepted(client, space, owner):
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    from apps.reminders import tokens

    token = tokens.make_link_token(action="verify", record_id=record.pk, user_id=owner.pk)
    body = urlencode({"payload": json.dumps(block_actions(value=token))})
    timestamp = str(int(time.time()))
    verifier = SignatureVerifier(SIGNING_SECRET)
    signature = verifier.generate_signature(timestamp=timestamp, body=body)
    # The tests' own signer agrees with the SDK.
    ours_body, ours = slack_request(block_actions(value=token), timestamp=int(timestamp))
    assert verifier.is_valid(
        ours_body, ours["X-Slack-Request-Timestamp"], ours["X-Slack-Signature"]
    )
    response = client.generic(
        "POST",
        "/chat/slack/interactivity",
        body.encode(),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature},
    )
    assert response.status_code == 200
    assert Record.objects.get(pk=record.pk).freshness == "fresh"

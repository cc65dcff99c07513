"""Slack's interactive callbacks (a button press in a digest): the v0 request signature, the
timestamp window, replay refusal, and acting as the record's owner."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import User
from apps.chat.models import SlackInteraction
from apps.chat.services import preference_of
from apps.chat.transport import host_allowed
from apps.core.errors import Forbidden, InvalidInput, ServiceError
from apps.core.links import absolute_url
from apps.records.models import Record
from apps.records.policy import valid_until_passed
from apps.reminders import services as reminder_services
from apps.reminders import tokens

# Slack's documented window: a request whose timestamp is further off is refused.
SLACK_MAX_AGE_SECONDS = 300


class Refused(ServiceError):
    """A Slack callback that is not provably Slack's, or is a replay (HTTP 401 / 409)."""

    code = "unauthenticated"


def slack_verify(*, body: bytes, timestamp: str, signature: str, now: float) -> None:
    """Slack's v0 request signature: HMAC-SHA256 of "v0:{timestamp}:{body}" with the app's
    signing secret, and a timestamp within five minutes of now."""
    secret = settings.CHAT_SLACK_SIGNING_SECRET
    if not secret:
        raise Refused(
            "Slack interactivity is not configured on this server (CHAT_SLACK_SIGNING_SECRET).",
            code="not_configured",
        )
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        raise Refused("Missing or malformed X-Slack-Request-Timestamp.") from None
    if abs(now - sent) > SLACK_MAX_AGE_SECONDS:
        raise Refused("The request timestamp is more than five minutes off; refused.")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
        raise Refused("The Slack signature does not match; refused.")


def _claim_interaction(keys: list[str], *, now: dt.datetime) -> None:
    SlackInteraction.objects.filter(
        received_at__lt=now - dt.timedelta(seconds=2 * SLACK_MAX_AGE_SECONDS)
    ).delete()
    try:
        with transaction.atomic():
            SlackInteraction.objects.bulk_create(
                [SlackInteraction(key=k[:100], received_at=now) for k in keys]
            )
    except IntegrityError:
        raise Refused(
            "This Slack request was already handled; replay refused.", code="replayed"
        ) from None


@transaction.atomic
def slack_interaction(
    *, body: bytes, timestamp: str, signature: str, now: dt.datetime | None = None
) -> list[str]:
    """Handle one Slack interactive callback (a button press in a digest): verify it, refuse a
    replay, and act as the record's owner. Returns what to tell the person who pressed."""
    now = now or timezone.now()
    slack_verify(body=body, timestamp=timestamp, signature=signature, now=now.timestamp())
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        raise InvalidInput("The body is not a Slack interaction payload.") from None
    if not isinstance(payload, dict):
        raise InvalidInput("The body is not a Slack interaction payload.")
    keys = ["sig:" + signature]
    if isinstance(payload.get("trigger_id"), str):
        keys.append("trigger:" + payload["trigger_id"])
    _claim_interaction(keys, now=now)
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user")
    slack_user = str(user.get("id", "")) if isinstance(user, dict) else ""
    actions = payload.get("actions")
    replies = []
    for action in actions if isinstance(actions, list) else []:
        if not isinstance(action, dict):
            continue
        kind = str(action.get("action_id", "")).partition(":")[0]
        if kind in ("still_true", "not_mine"):
            replies.append(_act(kind, str(action.get("value", "")), slack_user=slack_user, now=now))
    return replies


_BUTTON_PROBLEMS = {
    "expired": "This button has expired. Open your review queue in contextkb instead.",
    "invalid": "This button is not valid. Nothing was changed.",
    "used": "This button was already used. Nothing was changed.",
}


def _act(kind: str, token: str, *, slack_user: str, now: dt.datetime) -> str:
    action = "verify" if kind == "still_true" else "not_mine"
    try:
        link = tokens.read_link_token(token, action=action)
    except tokens.LinkError as exc:
        return _BUTTON_PROBLEMS[exc.reason]
    user = User.objects.filter(pk=link.user_id, is_active=True).first()
    if user is None:
        return _BUTTON_PROBLEMS["invalid"]
    linked = preference_of(user).slack_user_id
    if not linked or linked != slack_user:
        return (
            f"These buttons act for {user.display_name}, and your Slack account is not theirs "
            "in contextkb (their notification settings hold their Slack member ID). Nothing "
            "was changed."
        )
    record = (
        Record.objects.visible_to(user).active().select_related("space").filter(pk=link.record_id)
    ).first()
    if record is None:
        return "This record is no longer there, or you no longer have access to it."
    if kind == "still_true":
        if not access.can_verify(user, record):
            return f"{record.key} is no longer yours to verify. Nothing was changed."
        if valid_until_passed(record.valid_until, now=now):
            url = absolute_url(reverse("reminders:still_true", args=[token]))
            return (
                f"{record.key}'s valid-until date has passed: choose a new one (or none) "
                f"here: {url}"
            )
        try:
            verification = reminder_services.link_still_true(
                record=record, user=user, nonce=link.nonce
            )
        except (InvalidInput, Forbidden) as exc:
            return f"{record.key} was not verified: {exc}"
        if verification is None:
            return _BUTTON_PROBLEMS["used"]
        record.refresh_from_db()
        return (
            f"Thanks: {record.key} is verified as still true; its next review is on "
            f"{record.next_review_at:%-d %b %Y}."
        )
    if record.owner_user_id != user.pk:
        return f"{record.key} is no longer yours. Nothing was changed."
    result = reminder_services.link_not_mine(record=record, user=user, nonce=link.nonce)
    if result is None:
        return _BUTTON_PROBLEMS["used"]
    return f"{record.key} went back to the admins of {record.space.name}."


def response_url_allowed(url: str) -> bool:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return False
    schemes = ("https", "http") if settings.CHAT_ALLOW_HTTP else ("https",)
    return parts.scheme in schemes and host_allowed((parts.hostname or "").lower())

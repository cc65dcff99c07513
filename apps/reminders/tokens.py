"""Signed one-click links: "Still true" and "Not mine" (single use, expiring) and unsubscribe."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

LINK_SALT = "contextkb.reminders.one-click"
UNSUBSCRIBE_SALT = "contextkb.reminders.unsubscribe"
ACTIONS = ("verify", "not_mine")


class LinkError(Exception):
    """A link that cannot be used; `reason` is one of expired, invalid, used."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkPayload:
    action: str
    record_id: int
    user_id: int
    nonce: str


def make_link_token(*, action: str, record_id: int, user_id: int) -> str:
    if action not in ACTIONS:
        raise ValueError(action)
    payload = {"a": action, "r": record_id, "u": user_id, "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=LINK_SALT, compress=True)


def read_link_token(token: str, *, action: str) -> LinkPayload:
    max_age = settings.REMINDERS_LINK_MAX_AGE_DAYS * 86400
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkError("expired") from None
    except signing.BadSignature:
        raise LinkError("invalid") from None
    try:
        payload = LinkPayload(
            action=str(data["a"]), record_id=int(data["r"]), user_id=int(data["u"]), nonce=data["n"]
        )
    except (KeyError, TypeError, ValueError):
        raise LinkError("invalid") from None
    if payload.action != action or not isinstance(payload.nonce, str):
        raise LinkError("invalid")
    return payload


def make_unsubscribe_token(*, user_id: int) -> str:
    return signing.dumps({"u": user_id}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> int:
    try:
        return int(signing.loads(token, salt=UNSUBSCRIBE_SALT)["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkError("invalid") from None

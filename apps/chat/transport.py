"""HTTP to Slack and Teams. Errors are worded for a space admin and never carry the secret
(a webhook URL or a bot token): they are stored on the delivery and may be logged."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from django.conf import settings

from apps.core.errors import InvalidInput

# Slack Web API errors worth retrying; any other `"ok": false` is a configuration problem.
_SLACK_TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


class SendError(Exception):
    """A send that did not go through. `permanent`: retrying will not help (a revoked webhook,
    an unknown channel); the delivery gives up at once and waits for "Send again"."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.count = 0  # the items the message listed (set by the sender)


def check_webhook_url(url: str, *, platform: str) -> str:
    """A webhook URL the server may post to: https on a host of CHAT_WEBHOOK_HOSTS (so a space
    admin cannot point the server at an internal address)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidInput(
            f"The {platform} webhook URL is not a valid URL.",
            details={"webhook_url": ["Not a URL."]},
        ) from None
    allowed_schemes = ("https", "http") if settings.CHAT_ALLOW_HTTP else ("https",)
    host = (parts.hostname or "").lower()
    if parts.scheme not in allowed_schemes or not host:
        raise InvalidInput(
            f"The {platform} webhook URL must start with https://.",
            details={"webhook_url": ["Not an https URL."]},
        )
    if not host_allowed(host):
        raise InvalidInput(
            f"{host} is not a {platform} webhook host. Allowed: "
            f"{', '.join(settings.CHAT_WEBHOOK_HOSTS)} (CHAT_WEBHOOK_HOSTS).",
            details={"webhook_url": ["Host not allowed."]},
        )
    return url


def host_allowed(host: str) -> bool:
    for allowed in settings.CHAT_WEBHOOK_HOSTS:
        allowed = allowed.lower()
        if (allowed.startswith(".") and host.endswith(allowed)) or host == allowed:
            return True
    return False


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return " ".join(text.split())[:300]


def post(*, platform: str, url: str, body: dict, token: str = "") -> httpx.Response:
    """POST `body` as JSON; returns the response or raises SendError with a clear message."""
    name = "Slack" if platform.startswith("slack") else "Teams"
    secrets = [url, token, urlsplit(url).path, urlsplit(url).query]
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = settings.CHAT_TIMEOUT_SECONDS
    try:
        response = httpx.post(
            url, json=body, headers=headers, timeout=timeout, follow_redirects=False
        )
    except httpx.TimeoutException:
        raise SendError(f"{name} did not answer within {timeout} s.") from None
    except httpx.HTTPError as exc:
        raise SendError(
            f"Could not reach {name}: {_scrub(str(exc) or type(exc).__name__, secrets)}."
        ) from None
    answer = _scrub(response.text, secrets)
    status = response.status_code
    if status == 429 or status >= 500:
        raise SendError(f"{name} answered HTTP {status}: {answer or 'no details'}.")
    if status >= 300:
        hint = (
            " The webhook was probably revoked, or its channel archived or deleted: a space "
            "admin should set a new one on the space's Chat page."
            if status in (403, 404, 410)
            else ""
        )
        raise SendError(
            f"{name} refused the message (HTTP {status}: {answer or 'no details'}).{hint}",
            permanent=True,
        )
    if platform == "slack_bot":
        try:
            data = response.json()
        except ValueError:
            raise SendError(f"Slack answered something that is not JSON: {answer[:100]}") from None
        if not data.get("ok"):
            error = str(data.get("error", "unknown_error"))
            hints = {
                "channel_not_found": " Invite the app to the channel, or check the channel ID.",
                "not_in_channel": " Invite the app to the channel (/invite @app).",
                "invalid_auth": " The bot token is wrong or was revoked.",
                "token_revoked": " The bot token was revoked.",
                "missing_scope": " The app needs the chat:write scope.",
            }
            raise SendError(
                f"Slack refused the message: {error}.{hints.get(error, '')}",
                permanent=error not in _SLACK_TRANSIENT,
            )
    return response

"""Chat tasks: the reply to a Slack button press (digests themselves are sent by
reminders.send_delivery, which hands chat deliveries to apps.chat.services.deliver)."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.conf import settings

from apps.chat.interactions import response_url_allowed

log = logging.getLogger(__name__)


@shared_task(name="chat.slack_reply", acks_late=True, max_retries=2)
def slack_reply(response_url: str, text: str) -> bool:
    """Tell the person who pressed a button what happened: an ephemeral message through the
    interaction's response_url (only to a CHAT_WEBHOOK_HOSTS host)."""
    if not response_url_allowed(response_url):
        return False
    try:
        response = httpx.post(
            response_url,
            json={"response_type": "ephemeral", "replace_original": False, "text": text},
            timeout=settings.CHAT_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        log.warning("Slack reply failed: %s", type(exc).__name__)
        return False
    return response.status_code < 300

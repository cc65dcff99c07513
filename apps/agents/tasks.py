"""Celery tasks of registered agents: the escalation email."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from apps.agents import emails, services

log = logging.getLogger(__name__)
MAX_SEND_RETRIES = 5


@shared_task(name="agents.send_escalation", bind=True, acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_escalation(self, escalation_id: int) -> str:
    """Send one escalation, exactly once: claim it, send, or unclaim and retry on SMTP errors."""
    escalation = services.escalation_claim(escalation_id=escalation_id)
    if escalation is None:
        return "not claimed"  # already sent, being sent, or gone
    if not escalation.recipients:
        return "no recipient"
    try:
        emails.escalation(escalation=escalation)
    except (smtplib.SMTPException, OSError) as exc:
        services.escalation_unclaim(escalation_id=escalation_id)
        if self.request.retries >= MAX_SEND_RETRIES:
            log.error("Giving up on escalation %s: %s", escalation_id, exc)
            return "gave up"
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc
    return "sent"

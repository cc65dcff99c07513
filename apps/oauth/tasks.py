"""Celery task: drop expired OAuth codes and tokens (beat runs it nightly)."""

from __future__ import annotations

from celery import shared_task
from oauth2_provider.models import clear_expired


@shared_task(acks_late=True, ignore_result=True)
def clear_expired_tokens() -> None:
    """The toolkit's own cleanup (`manage.py cleartokens`): expired and revoked refresh tokens,
    expired access tokens and authorization codes (with the spaces chosen for them). The API
    token of each connection stays, expired or revoked, like any other on the Tokens page."""
    clear_expired()

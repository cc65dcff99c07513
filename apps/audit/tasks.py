"""Celery task: the audit log's retention (beat runs it nightly)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from apps.audit.services import audit_prune

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def prune() -> int:
    """Drop audit events older than AUDIT_RETENTION_DAYS (0 = keep them all)."""
    deleted = audit_prune(older_than_days=settings.AUDIT_RETENTION_DAYS)
    if deleted:
        logger.info("audit log: %s events older than %s days deleted", deleted,
                    settings.AUDIT_RETENTION_DAYS)  # fmt: skip
    return deleted

"""System checks of the reminders settings."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


def send_lease_above_time_limit(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A lease at or below Celery's hard time limit could re-send a digest that is only slow."""
    lease = settings.REMINDERS_SEND_LEASE_SECONDS
    limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", None)
    if limit is not None and lease <= limit:
        return [
            checks.Warning(
                f"REMINDERS_SEND_LEASE_SECONDS ({lease}) is not above CELERY_TASK_TIME_LIMIT "
                f"({limit}): a slow digest send may be re-queued while it is still running and "
                "reach its owner twice.",
                hint="Unset REMINDERS_SEND_LEASE_SECONDS (default: time limit + 60) or raise it.",
                id="reminders.W001",
            )
        ]
    return []

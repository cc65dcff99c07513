"""Digest deliveries, one-click link tokens, daily health snapshots and drift reports."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Space


class Delivery(models.Model):
    """One email for one recipient and period; the unique row is what makes a send exactly-once."""

    class Kind(models.TextChoices):
        DIGEST = "digest", "Owner digest"
        ESCALATION = "escalation", "Escalation digest"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        GAVE_UP = "gave_up", "Failed (gave up)"
        EMPTY = "empty", "Nothing to send"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminder_deliveries"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # "2026-11-24" for daily digests, "2026-W48" for weekly ones and escalations.
    period = models.CharField(max_length=12)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "period"], name="delivery_unique_user_kind_period"
            )
        ]
        indexes = [
            # The admin's "failed / stuck sends" filter.
            models.Index(fields=["status", "created_at"], name="delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user} ({self.period}): {self.status}"


class UsedLink(models.Model):
    """A one-click link that was used; a second use of the same nonce is refused."""

    nonce = models.CharField(max_length=64, unique=True)
    action = models.CharField(max_length=20)
    record_id = models.BigIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} {self.nonce[:8]}…"


class HealthSnapshot(models.Model):
    """The freshness counts of one space on one day (the dashboard's trend chart)."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="health_snapshots")
    day = models.DateField()
    fresh = models.PositiveIntegerField(default=0)
    due = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)
    suspect = models.PositiveIntegerField(default=0)
    orphaned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["space", "day"], name="snapshot_unique_space_day")
        ]

    def __str__(self) -> str:
        return f"{self.space} {self.day}"


class DriftReport(models.Model):
    """Paths a commit changed, as reported by CI, a push webhook or `manage.py drift`."""

    class Source(models.TextChoices):
        API = "api", "API"
        GITHUB = "github", "GitHub webhook"
        GITLAB = "gitlab", "GitLab webhook"
        COMMAND = "command", "manage.py drift"

    repository = models.CharField(max_length=300)
    commit = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=Source.choices)
    changed_paths = ArrayField(models.TextField(), default=list)
    # Changed paths no record is anchored to (the dashboard's coverage list).
    unmatched_paths = ArrayField(models.TextField(), default=list)
    suspect_count = models.PositiveIntegerField(default=0)
    # The spaces the report reached: None for every space (a webhook or `manage.py drift`),
    # else the spaces the reporting token's user may edit. The coverage list shows a report
    # only to members of those spaces.
    space_ids = ArrayField(models.BigIntegerField(), null=True, blank=True)
    compare_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A redelivered webhook or a re-run CI job reports the same commit again: once only.
            models.UniqueConstraint(
                fields=["repository", "commit"],
                condition=~Q(commit=""),
                name="drift_unique_repository_commit",
            )
        ]
        indexes = [
            # Coverage: unmatched paths of recent reports.
            models.Index(fields=["created_at"], name="drift_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.commit[:10]}"

"""Digest deliveries, one-click link tokens, daily health snapshots and drift reports."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Space


class Delivery(models.Model):
    """One email or chat message for one recipient and period; the unique row is what makes a
    send exactly-once."""

    class Kind(models.TextChoices):
        DIGEST = "digest", "Owner digest"
        ESCALATION = "escalation", "Escalation digest"
        # A one-off chat message (a proposal, an agent escalation): apps.chat.services.notify.
        NOTICE = "notice", "Chat notice"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        CHAT = "chat", "Chat"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        GAVE_UP = "gave_up", "Failed (gave up)"
        EMPTY = "empty", "Nothing to send"

    # None only for a chat notice addressed to a space rather than a person.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="reminder_deliveries",
        null=True,
        blank=True,
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # "2026-11-24" for daily digests, "2026-W48" for weekly ones and escalations; a notice's
    # caller-given key (one message per key).
    period = models.CharField(max_length=80)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    # Chat deliveries go to this space's channel (None for email).
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, null=True, blank=True, related_name="chat_deliveries"
    )
    # A notice's content (title, text, links); digests are rendered at send time.
    payload = models.JSONField(default=dict, blank=True)
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
            # One email per person, kind and period (delivery_plan's ON CONFLICT target).
            models.UniqueConstraint(
                fields=["user", "kind", "period"],
                condition=Q(channel="email"),
                name="delivery_unique_user_kind_period",
            ),
            # One chat message per person (or none, for a space notice), kind, period and space.
            models.UniqueConstraint(
                fields=["user", "kind", "period", "space"],
                condition=Q(channel="chat"),
                nulls_distinct=False,
                name="delivery_unique_chat",
            ),
        ]
        indexes = [
            # The admin's "failed / stuck sends" filter.
            models.Index(fields=["status", "created_at"], name="delivery_status_idx"),
            # A space's chat deliveries, newest first (the space's chat page).
            models.Index(fields=["space", "-created_at"], name="delivery_space_idx"),
        ]

    def __str__(self) -> str:
        whom = self.user or self.space
        return (
            f"{self.get_kind_display()} ({self.channel}) for {whom} ({self.period}): {self.status}"
        )


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

"""Registered agents (principals with a declared scope), their proposals and escalations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# The MCP tools an agent may be allowed, and the REST areas (/api/v1/<area>/) it may call.
MCP_TOOLS = (
    "search_context",
    "get_record",
    "guardrails_for_paths",
    "report_gap",
    "assess_change",
    "resources",
    "propose_record",
    "propose_update",
    "flag_outdated",
    "escalate",
)
REST_SCOPES = (
    "me",
    "context",
    "spaces",
    "records",
    "links",
    "changes",
    "drift",
    "proposals",
)
DEFAULT_TOOLS = [t for t in MCP_TOOLS if t != "assess_change"]
DEFAULT_SCOPES = ["me", "context", "proposals"]


class Agent(models.Model):
    """An AI agent registered as a principal: what it may touch, who answers for it."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    purpose = models.TextField(blank=True)
    # The person who answers for what the agent does; its tokens act with this person's rights,
    # narrowed to the agent's spaces and read-only (writes go through proposals).
    accountable = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="accountable_agents"
    )
    spaces = models.ManyToManyField("accounts.Space", related_name="agents")
    # Path globs (the anchors' syntax) the agent works on; empty means every path.
    path_globs = models.JSONField(default=list, blank=True)
    allowed_tools = models.JSONField(default=list, blank=True)
    allowed_scopes = models.JSONField(default=list, blank=True)
    escalation_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="escalation_agents",
    )
    escalation_team = models.ForeignKey(
        "accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # DRF rate syntax ("120/minute"), counted over all of the agent's tokens; blank: the API's
    # per-token rate.
    rate_limit = models.CharField(max_length=30, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def escalation_label(self) -> str:
        if self.escalation_user_id:
            return str(self.escalation_user)
        if self.escalation_team_id:
            return f"team {self.escalation_team}"
        return ""


class AgentEvent(models.Model):
    """Something an agent did that its page shows: a gap reported, a call refused."""

    class Kind(models.TextChoices):
        GAP = "gap", "Gap reported"
        REFUSED = "refused", "Call refused"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The agent page: recent events of one agent, counts per kind.
            models.Index(fields=["agent", "kind", "-created_at"], name="agent_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class Proposal(models.Model):
    """An agent's suggested write: a new record, a change, or evidence that one is outdated.
    Nothing changes until a person accepts it."""

    class Kind(models.TextChoices):
        NEW = "new", "New record"
        UPDATE = "update", "Change to a record"
        OUTDATED = "outdated", "Flagged as outdated"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="proposals")
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    space = models.ForeignKey("accounts.Space", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    record = models.ForeignKey(
        "records.Record",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="proposals",
    )
    # The record version the agent saw (updates and flags): a later version is a conflict.
    base_version = models.PositiveIntegerField(null=True, blank=True)
    # New records: kind, title, summary, body, tags, anchors. Updates: only the changed fields.
    fields = models.JSONField(default=dict, blank=True)
    # The changed fields as they were at base_version, so the owner sees a diff.
    base_fields = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    # Whether the reviewer edited the proposal before accepting it.
    edited = models.BooleanField(default=False)
    # What accepting produced: the created record (new) and its revision number.
    result_record = models.ForeignKey(
        "records.Record", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    result_revision = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Review queues and digests: pending proposals per space.
            models.Index(fields=["space", "status"], name="proposal_space_status_idx"),
            # An agent's own list, newest first.
            models.Index(fields=["agent", "-created_at"], name="proposal_agent_idx"),
        ]

    def __str__(self) -> str:
        target = self.record.key if self.record is not None else self.fields.get("title", "")
        return f"{self.get_kind_display()}: {target}"

    @property
    def is_conflict(self) -> bool:
        """The record changed since the agent saw it: never applied as is."""
        return (
            self.status == self.Status.PENDING
            and self.base_version is not None
            and self.record is not None
            and self.record.version != self.base_version
        )


class Escalation(models.Model):
    """An agent asking a person before crossing a guardrail; notified once."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="escalations")
    guardrail = models.ForeignKey("records.Record", on_delete=models.CASCADE, related_name="+")
    action = models.TextField()
    reason = models.TextField()
    # The caller's idempotency key, or a hash of (guardrail, action, reason) and the time window.
    dedupe_key = models.CharField(max_length=100)
    contact_label = models.CharField(max_length=200, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "dedupe_key"], name="escalation_unique_agent_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent} on {self.guardrail_id} at {self.created_at:%Y-%m-%d %H:%M}"

"""Records (decisions, constraints, intent, guardrails), their links, revisions and verifications."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Space, Team

KIND_PREFIX = {
    "decision": "DEC",
    "constraint": "CON",
    "intent": "INT",
    "guardrail": "GRD",
}


class LiveFreshness(models.Expression):
    """`policy.freshness_sql` as an ORM expression over the query's records table; it follows
    the table's alias when the query becomes a subquery (`__in`, `Exists`)."""

    output_field = models.CharField()

    def __init__(self, now, alias: str = "records_record"):
        super().__init__()
        self.now = now
        self.alias = alias

    def relabeled_clone(self, change_map):
        clone = copy.copy(self)
        clone.alias = change_map.get(self.alias, self.alias)
        return clone

    def as_sql(self, compiler, connection):
        from apps.records.policy import freshness_sql

        alias = compiler.quote_name_unless_alias(self.alias)
        return freshness_sql(alias, now=self.now)

    def get_group_by_cols(self):
        return [self]


class _LiveFreshnessIterable(models.query.ModelIterable):
    """Model instances whose `freshness` is the derived state of the query's `now`, not the
    sweep's cached column (see `RecordQuerySet.with_freshness`)."""

    def __iter__(self):
        for obj in super().__iter__():
            obj.freshness = obj.live_freshness
            yield obj


class RecordQuerySet(models.QuerySet):
    def with_freshness(self, now=None) -> RecordQuerySet:
        """Annotate `live_freshness`, derived from the record's dates, status and open reasons
        at `now` (apps.records.policy.freshness_sql), and show it as each record's `freshness`.

        Filter and count on `live_freshness`: the stored `freshness` column is only the sweep's
        cache and may lag behind the clock."""
        qs = self.annotate(live_freshness=LiveFreshness(now or timezone.now()))
        qs._iterable_class = _LiveFreshnessIterable
        return qs

    def visible_to(self, principal) -> RecordQuerySet:
        """The single authorization point for reading records (users and API tokens)."""
        from apps.accounts.access import space_ids_visible_to

        ids = space_ids_visible_to(principal)
        return self if ids is None else self.filter(space_id__in=ids)

    def active(self) -> RecordQuerySet:
        return self.filter(archived_at__isnull=True)

    def anchored_to(self, paths: list[str] | str) -> RecordQuerySet:
        """Records with at least one anchor matching at least one of the paths."""
        from apps.records.anchors import normalise_path

        if isinstance(paths, str):
            paths = [paths]
        paths = [normalise_path(p) for p in paths if p and p.strip()]
        if not paths:
            return self.none()
        return self.annotate(
            _anchor_hit=RawSQL(
                "EXISTS (SELECT 1 FROM unnest(records_record.anchor_patterns) AS pat, "
                "unnest(%s::text[]) AS path WHERE path ~ pat)",
                [paths],
                output_field=models.BooleanField(),
            )
        ).filter(_anchor_hit=True)


class Record(models.Model):
    """One piece of context: a decision, constraint, product intent or agent guardrail."""

    class Kind(models.TextChoices):
        DECISION = "decision", "Decision"
        CONSTRAINT = "constraint", "Constraint"
        INTENT = "intent", "Intent"
        GUARDRAIL = "guardrail", "Guardrail"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROPOSED = "proposed", "Proposed"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        DEPRECATED = "deprecated", "Deprecated"
        SUPERSEDED = "superseded", "Superseded"

    class Freshness(models.TextChoices):
        FRESH = "fresh", "Fresh"
        # Never verified by anyone, within its first review interval (policy.freshness_for).
        UNVERIFIED = "unverified", "Not yet verified"
        DUE = "due", "Due"
        STALE = "stale", "Stale"
        SUSPECT = "suspect", "Suspect"

    class Reversibility(models.TextChoices):
        ONE_WAY = "one_way", "One-way door"
        TWO_WAY = "two_way", "Two-way door"

    class Impact(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    space = models.ForeignKey(Space, on_delete=models.PROTECT, related_name="records")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    number = models.PositiveIntegerField()
    key = models.CharField(max_length=20)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_records",
    )
    owner_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_records"
    )
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    anchors = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    # The anchors compiled to regular expressions (apps.records.anchors), kept by the services.
    anchor_patterns = ArrayField(models.TextField(), default=list, blank=True, editable=False)
    reversibility = models.CharField(max_length=10, choices=Reversibility.choices, blank=True)
    impact = models.CharField(max_length=10, choices=Impact.choices, blank=True)
    decided_on = models.DateField(null=True, blank=True)
    deciders = models.CharField(max_length=500, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    # Where an imported record came from (path inside the imported folder), for re-imports.
    source_path = models.CharField(max_length=500, blank=True)

    version = models.PositiveIntegerField(default=1)
    archived_at = models.DateTimeField(null=True, blank=True)

    # Derived by services and the sweep, never typed in.
    freshness = models.CharField(max_length=10, choices=Freshness.choices, default=Freshness.FRESH)
    next_review_at = models.DateTimeField()
    last_verified_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    objects = RecordQuerySet.as_manager()

    class Meta:
        ordering = ["space_id", "kind", "number"]
        constraints = [
            models.UniqueConstraint(fields=["space", "key"], name="record_unique_space_key"),
            models.UniqueConstraint(
                fields=["space", "kind", "number"], name="record_unique_space_kind_number"
            ),
            models.UniqueConstraint(
                fields=["space", "source_path"],
                condition=~Q(source_path=""),
                name="record_unique_space_source_path",
            ),
            models.CheckConstraint(
                condition=~(Q(owner_user__isnull=False) & Q(owner_team__isnull=False)),
                name="record_single_owner",
            ),
            models.CheckConstraint(condition=~Q(title=""), name="record_title_not_empty"),
            models.CheckConstraint(condition=Q(version__gte=1), name="record_version_positive"),
        ]
        indexes = [
            # The staleness sweep and review queues: records by review date.
            models.Index(fields=["next_review_at"], name="record_next_review_idx"),
            # Space home filters: freshness and status within a space.
            models.Index(fields=["space", "freshness"], name="record_space_freshness_idx"),
            models.Index(fields=["space", "status"], name="record_space_status_idx"),
            # The space page's freshness counts and tag list, read from the index alone (a scan
            # of the table took ~0.5 s a page at 100,000 records; bench/web_search.py).
            models.Index(
                fields=["space", "freshness"],
                condition=Q(archived_at__isnull=True),
                name="record_active_freshness_idx",
            ),
            models.Index(
                fields=["space"],
                include=["tags"],
                condition=Q(archived_at__isnull=True),
                name="record_active_tags_idx",
            ),
            # The summary strip's due and stale records: a range of review dates in one space,
            # with what deriving their state reads (an index-only scan, apps.web.selectors).
            models.Index(
                fields=["space", "next_review_at"],
                include=["id", "status", "valid_until", "last_verified_at"],
                condition=Q(archived_at__isnull=True),
                name="record_active_review_idx",
            ),
            # Full-text search.
            GinIndex(fields=["search_vector"], name="record_search_idx"),
            # Tag filters (tags @> ARRAY[...]).
            GinIndex(fields=["tags"], name="record_tags_idx"),
            # "Updated since" filters and recent-changes lists.
            models.Index(fields=["updated_at"], name="record_updated_idx"),
            # The hourly sweep's valid-until check (few records have one).
            models.Index(
                fields=["valid_until"],
                condition=Q(valid_until__isnull=False),
                name="record_valid_until_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    def get_absolute_url(self) -> str:
        """The record's page in the web UI (site-relative; `core.links.absolute_url` makes it
        absolute for emails, the API and AI tools)."""
        return reverse("web:record_detail", kwargs={"slug": self.space.slug, "key": self.key})

    def get_edit_url(self) -> str:
        return reverse("web:record_edit", kwargs={"slug": self.space.slug, "key": self.key})

    def get_diff_url(self, *, number: int) -> str:
        """The record's history page showing what revision `number` changed."""
        path = reverse("web:record_history", kwargs={"slug": self.space.slug, "key": self.key})
        return f"{path}?a={number - 1}&b={number}"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def owner(self):
        return self.owner_user or self.owner_team

    @property
    def owner_label(self) -> str:
        owner = self.owner
        return str(owner) if owner else "Unowned"


class RecordKeyCounter(models.Model):
    """The last number handed out per space and kind; advanced by one atomic upsert."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Record.Kind.choices)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "kind"], name="key_counter_unique_space_kind")
        ]

    def __str__(self) -> str:
        return f"{self.space_id}/{self.kind}: {self.last_number}"


class Link(models.Model):
    """A typed, directed link between two records."""

    class Type(models.TextChoices):
        SUPERSEDES = "supersedes", "supersedes"
        AMENDS = "amends", "amends"
        DEPENDS_ON = "depends_on", "depends on"
        IMPLEMENTS = "implements", "implements"
        CONSTRAINS = "constrains", "constrains"
        RELATES_TO = "relates_to", "relates to"
        CONFLICTS_WITH = "conflicts_with", "conflicts with"

    # How the link reads from the target's side, for "incoming" lists.
    INVERSE_LABELS = {
        "supersedes": "superseded by",
        "amends": "amended by",
        "depends_on": "depended on by",
        "implements": "implemented by",
        "constrains": "constrained by",
        "relates_to": "related to",
        "conflicts_with": "conflicts with",
    }

    source = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="outgoing_links")
    target = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="incoming_links")
    type = models.CharField(max_length=20, choices=Type.choices)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["type", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "type"], name="link_unique_source_target_type"
            ),
            models.CheckConstraint(condition=~Q(source=F("target")), name="link_no_self_link"),
        ]

    def __str__(self) -> str:
        return f"{self.source.key} {self.get_type_display()} {self.target.key}"


class Revision(models.Model):
    """The full content of a record as of one version, with who changed it, when and why."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Edited"
        STATUS = "status", "Status changed"
        ARCHIVE = "archive", "Archived"
        UNARCHIVE = "unarchive", "Unarchived"
        RESTORE = "restore", "Restored"
        LINK = "link", "Linked"
        UNLINK = "unlink", "Unlinked"

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="revisions")
    # Revisions are numbered 1, 2, 3… per record. Link changes add a revision without bumping the
    # record's version (so they never make someone's open edit form stale).
    number = models.PositiveIntegerField()
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=12, choices=Action.choices)
    # Every content field of the record at this version (see revisions.snapshot).
    snapshot = models.JSONField()
    message = models.CharField(max_length=300, blank=True)
    # The other record the message names by key (a link's other end, a successor): readers who
    # cannot see it read "a record in a space you cannot see" instead of its key.
    related_record = models.ForeignKey(
        "Record", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    # Not columns: worded for one reader by records.selectors.present_revisions.
    text: str
    shown_snapshot: dict[str, Any]

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["record", "number"], name="revision_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.record.key} r{self.number}"


class Verification(models.Model):
    """Someone confirmed a record still holds (or said it needs an update), at a point in time."""

    class Outcome(models.TextChoices):
        STILL_TRUE = "still_true", "Still true"
        NEEDS_UPDATE = "needs_update", "Needs update"

    # The note on the verification an owner's own substantive edit implies (record_update).
    OWNER_EDIT_NOTE = "Edited by its owner"
    # Not columns: record_verify says on the object it returns what "still true" did to a passed
    # valid-until date ("extended" or "cleared", and the date it had), for the confirmation.
    valid_until_change: str = ""
    previous_valid_until: dt.date | None = None

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="verifications")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    note = models.CharField(max_length=500, blank=True)
    record_version = models.PositiveIntegerField()
    # {"CON-3": 4, ...}: the versions of linked records this verification saw.
    linked_versions = models.JSONField(default=dict, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Verification history on the record page, newest first.
            models.Index(fields=["record", "-created_at"], name="verification_record_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.record.key} {self.outcome} at {self.created_at:%Y-%m-%d}"


class SuspectReason(models.Model):
    """One piece of evidence that a record may no longer hold; open until verified or edited."""

    class Cause(models.TextChoices):
        LINKED_RECORD_CHANGED = "linked_changed", "A linked record changed"
        CODE_CHANGED = "code_changed", "Code under its anchors changed"
        VALID_UNTIL_PASSED = "valid_until", "Its valid-until date passed"
        OWNER_LEFT = "owner_left", "Its owner left"

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="suspect_reasons")
    cause = models.CharField(max_length=20, choices=Cause.choices)
    message = models.CharField(max_length=500)
    cause_record = models.ForeignKey(
        Record, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cause_url = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    # Not columns: worded for one reader by records.selectors.present_reasons (and the emails).
    text: str
    url: str
    absolute_url: str

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Open reasons of a record (record page, freshness computation).
            models.Index(
                fields=["record"],
                condition=Q(resolved_at__isnull=True),
                name="suspect_reason_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record.key}: {self.message}"


class CreateSubmission(models.Model):
    """One sent "create" form (by the token it carried) and the record it created, so that the
    same form sent twice (a double-click, a browser resending the POST) creates one record.

    Kept for KEEP (as long as an unsent editor draft): a form sent again after that is saved
    as a new record. The hourly sweep deletes older rows (`services.create_submission_prune`)."""

    KEEP = dt.timedelta(days=7)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64)
    # A hash of what the form held: the same token with other content is not a double-submit.
    fingerprint = models.CharField(max_length=64)
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "token"], name="create_submission_unique_token")
        ]
        indexes = [
            # The hourly prune of rows older than KEEP.
            models.Index(fields=["created_at"], name="create_submission_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.token} → {self.record_id}"


# Models of this app kept in their own module (the space page's counts).
from apps.records.space_tags import SpaceTag, SpaceTally  # noqa: E402, F401

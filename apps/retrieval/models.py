"""Embeddings of records, the usage log of context requests, and the gaps AI tools hit."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField

from apps.accounts.models import ApiToken, Space
from apps.records.models import Record


class RecordEmbedding(models.Model):
    """The vector of one record's text under one embedding model (written by a Celery task)."""

    record = models.OneToOneField(
        Record, on_delete=models.CASCADE, primary_key=True, related_name="embedding"
    )
    # "<provider>:<model>:<dimensions>"; vectors of another model are ignored (and recomputed).
    model_key = models.CharField(max_length=200)
    dimensions = models.PositiveSmallIntegerField()
    # No fixed dimension in the column so providers can be switched; the HNSW index is a partial
    # expression index per dimension (migration 0002 for 256, reindex_embeddings for others).
    vector = VectorField()
    # SHA-256 of the embedded text: an unchanged record is not re-embedded.
    content_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)
    # Token counts of the texts a bundle packs ({"hash": …, "full": n, "summary": m}), computed
    # with the vector so requests need not count them; "hash" is of the summary and body they
    # were counted from, and a request counts for itself when it no longer matches.
    token_counts = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # "Which records need (re-)embedding under the current model?"
            models.Index(fields=["model_key"], name="embedding_model_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} ({self.model_key})"


class ContextRequest(models.Model):
    """One context fetch by a tool (REST or MCP): who asked what, what came back, how fast."""

    class Channel(models.TextChoices):
        API = "api", "REST API"
        MCP = "mcp", "MCP"
        WEB = "web", "Web"

    created_at = models.DateTimeField(default=timezone.now)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The operation: "context", "agents_md", "search_context", "guardrails_for_paths", …
    operation = models.CharField(max_length=40)
    token = models.ForeignKey(
        ApiToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The calling tool, from its User-Agent or its MCP client info ("claude-code 1.2").
    tool = models.CharField(max_length=200, blank=True)
    query = models.TextField(blank=True)
    paths = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    space_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    # [{"key": "DEC-3", "record_id": 7, "score": 0.91, "version": 2, "revision": 3}, …] in
    # rank order (version and revision since bundles carry them).
    results = models.JSONField(default=list, blank=True)
    best_score = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    is_gap = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Dashboard: recent requests.
            models.Index(fields=["-created_at"], name="context_request_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.query[:40]!r} at {self.created_at:%Y-%m-%d %H:%M}"


class ContextBundle(models.Model):
    """What one context request served, kept with its usage-log entry (and deleted with it) so a
    citation of its id can be fetched back: GET /api/v1/context/bundles/<id>."""

    # apps.retrieval.bundle.new_bundle_id(): 20 hex digits, shown in the bundle itself.
    id = models.CharField(primary_key=True, max_length=32)
    request = models.OneToOneField(ContextRequest, on_delete=models.CASCADE, related_name="bundle")
    # The JSON body of GET /api/v1/context/ for this bundle, rendered as that endpoint renders
    # it (byte for byte), whichever format was asked for.
    json = models.TextField()
    # The markdown as served (over MCP: the tool's text, with its "Left out" line).
    markdown = models.TextField()
    # The format the caller was sent: "json" or "markdown".
    served_format = models.CharField(max_length=10)
    # The moment the bundle was answered as of (`as_of`), or None for "now".
    as_of = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"bundle {self.id}"


class ContextResult(models.Model):
    """One record returned by one context request (for per-record usage counts)."""

    request = models.ForeignKey(ContextRequest, on_delete=models.CASCADE, related_name="items")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    # Copied from the request so usage counts per period need no join.
    created_at = models.DateTimeField(default=timezone.now)
    tool = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            # "Fetched 41 times in the last 30 days by 3 tools" on the record page.
            models.Index(fields=["record", "created_at"], name="context_result_record_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} #{self.rank}"


class Gap(models.Model):
    """Questions AI tools asked that the space could not answer well, grouped and counted."""

    class Source(models.TextChoices):
        LOW_SCORE = "low_score", "Nothing relevant found"
        REPORTED = "reported", "Reported by a tool"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        ANSWERED = "answered", "Answered by a record"

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="gaps")
    query = models.TextField()
    # Lowercased content words, sorted: queries with the same words fall into one gap.
    normalized = models.CharField(max_length=500)
    vector = VectorField(null=True, blank=True)
    model_key = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    count = models.PositiveIntegerField(default=1)
    # Up to a few distinct phrasings and notes, newest last.
    examples = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # When and by whom the gap was closed (dismissed, or answered by a record).
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The record written from this gap ("Create record from this gap").
    answered_by = models.ForeignKey(
        Record, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-count", "-last_seen"]
        indexes = [
            # The gaps page: open gaps of a space, most asked first.
            models.Index(
                fields=["space", "-count"],
                condition=Q(status="open"),
                name="gap_open_space_idx",
            ),
            # Grouping: an open gap with the same words in the same space.
            models.Index(fields=["space", "normalized"], name="gap_space_normalized_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.space_id}: {self.query[:60]} ×{self.count}"


class SpaceTextStats(models.Model):
    """How many active records a space has and their total length in lexeme occurrences (the N
    and average document length of BM25), kept by apps.retrieval.lexical with each write."""

    space = models.OneToOneField(
        Space, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    docs = models.BigIntegerField(default=0)
    total_len = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.space_id}: {self.docs} records"


class SpaceTerm(models.Model):
    """In how many active records of a space a lexeme occurs (document frequency, for IDF)."""

    pk = models.CompositePrimaryKey("space_id", "lexeme")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+", db_index=False)
    lexeme = models.TextField()
    df = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.space_id}: {self.lexeme} ({self.df})"


class TermPosting(models.Model):
    """One lexeme of one active record: its term frequency, the record's length, and its impact
    (the BM25 term-frequency part at a reference length, which orders a lexeme's postings so a
    query can stop early; apps.retrieval.lexical)."""

    # The primary key also serves "this record's postings" (rewrite on edit, scoring candidates).
    pk = models.CompositePrimaryKey("record_id", "lexeme")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+", db_index=False)
    lexeme = models.TextField()
    # Denormalised from the record: postings are read per space without touching records.
    space_id = models.BigIntegerField()
    # Occurrences, those in the key and title (weight A) and summary and tags (B) counted
    # several times (apps.retrieval.lexical.WEIGHT_A/WEIGHT_B); the length sums them likewise.
    tf = models.FloatField()
    doc_len = models.FloatField()
    impact = models.FloatField()

    class Meta:
        indexes = [
            # BM25 search: a lexeme's postings in a space, best impact first (the top of the
            # list for early termination; the whole range, index-only, for exhaustive scoring).
            models.Index(
                "space_id",
                "lexeme",
                models.F("impact").desc(),
                name="posting_space_lexeme_idx",
                include=["record_id", "tf", "doc_len"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id}: {self.lexeme} ×{self.tf}"

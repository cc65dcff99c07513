"""Writes of the retrieval app: embeddings, the usage log and gaps."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import ApiToken, Space, User
from apps.core import secret_scan
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.core.text import strip_invisible
from apps.records.models import Record
from apps.retrieval import bundle, providers, usage
from apps.retrieval.models import ContextRequest, ContextResult, Gap, RecordEmbedding

logger = logging.getLogger(__name__)

EMBED_TEXT_CHARS = 8000
GAP_SIMILAR = 0.85  # cosine similarity above which two gap queries are the same question
GAP_EXAMPLES = 5

# --- embeddings -------------------------------------------------------------------------------


def embedding_text(record: Record) -> str:
    parts = [record.title, record.summary, " ".join(record.tags), record.body]
    return "\n".join(p for p in parts if p)[:EMBED_TEXT_CHARS]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Memory for building an HNSW index (ensure_vector_index).
HNSW_BUILD_MEMORY = "1GB"


def ensure_vector_index(dimensions: int) -> None:
    """The partial HNSW index for vectors of this size (256 comes with the migrations)."""
    dims = int(dimensions)
    if dims <= 0 or dims > 2000:  # HNSW on `vector` supports up to 2,000 dimensions
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred foreign-key checks pending in this transaction would block CREATE INDEX.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # The graph is built in memory while it fits (pgvector notes "hnsw graph no longer fits
        # into maintenance_work_mem" and slows down otherwise): about 1.5 kB per 256-dimension
        # vector, so 100,000 vectors need ~150 MB. Only allocated as needed.
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{HNSW_BUILD_MEMORY}'")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_hnsw_{dims} ON retrieval_recordembedding "
            f"USING hnsw ((vector::vector({dims})) vector_cosine_ops) WHERE dimensions = {dims}"
        )


def records_needing_embedding(model_key: str):
    """Active records with no vector under `model_key`, a vector older than their last edit, or
    without current token counts (none, or counted by another tokenizer or an older scheme)."""
    return Record.objects.active().filter(
        Q(embedding__isnull=True)
        | ~Q(embedding__model_key=model_key)
        # Edited since its vector was computed (or last found current): the embedding task of
        # that edit was lost (a worker killed with it, a broker outage) or is still queued.
        | Q(embedding__updated_at__lt=F("updated_at"))
        | Q(embedding__token_counts__isnull=True)
        | ~Q(embedding__token_counts__contains={"method": bundle.counts_stamp()})
    )


def _split_current(records: list[Record], model_key: str, force: bool):
    """The records whose vector must be computed, as (record, text, digest, token counts), and
    the stored vectors that are current but whose token counts and date are refreshed."""
    existing = {
        rid: (digest, model)
        for rid, digest, model in RecordEmbedding.objects.filter(record__in=records).values_list(
            "record_id", "content_hash", "model_key"
        )
    }
    todo, counts_only = [], []
    for record, counts in zip(records, bundle.text_token_counts(records), strict=True):
        text = embedding_text(record)
        digest = _hash(text)
        if not force and existing.get(record.pk) == (digest, model_key):
            # The vector is current (an edit that left the embedded text alone): say so, so the
            # sweep does not pick it again, and refresh the token counts if they changed.
            counts_only.append(
                RecordEmbedding(record=record, token_counts=counts, updated_at=timezone.now())
            )
            continue
        todo.append((record, text, digest, counts))
    return todo, counts_only


def embed_records(*, record_ids: Iterable[int], force: bool = False) -> int:
    """Compute and store vectors for these records under the configured provider.

    Unchanged text under the same model is skipped unless `force`. Returns how many were
    written. Raises providers.EmbeddingUnavailable when the provider fails (nothing written).
    """
    provider = providers.get_provider()
    if provider is None:
        return 0
    records = list(Record.objects.filter(pk__in=list(record_ids)).active())
    if not records:
        return 0
    todo, counts_only = _split_current(records, provider.model_key, force)
    if counts_only:
        RecordEmbedding.objects.bulk_update(counts_only, ["token_counts", "updated_at"])
    if not todo:
        return 0
    vectors = provider.embed([text for _, text, _, _ in todo])
    now = timezone.now()
    rows = [
        RecordEmbedding(
            record=record,
            model_key=provider.model_key,
            dimensions=len(vector),
            vector=vector,
            content_hash=digest,
            token_counts=counts,
            updated_at=now,
        )
        for (record, _, digest, counts), vector in zip(todo, vectors, strict=True)
    ]
    RecordEmbedding.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["record"],
        update_fields=[
            "model_key",
            "dimensions",
            "vector",
            "content_hash",
            "token_counts",
            "updated_at",
        ],
    )
    return len(rows)


def schedule_embedding(record_id: int) -> None:
    """Enqueue the embedding of one record once the surrounding transaction commits."""
    from apps.retrieval.tasks import embed_record

    def enqueue() -> None:
        try:
            embed_record.delay(record_id)
        except Exception:  # a broker outage must not fail the write; the sweep catches up
            logger.warning("Could not enqueue the embedding of record %s", record_id, exc_info=True)

    transaction.on_commit(enqueue)


# --- usage log and gaps -----------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "the",
        "to",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
        "this",
        "that",
        "there",
        "these",
        "those",
    ]
)


def normalize_query(query: str) -> str:
    words = sorted({w for w in _WORD.findall(query.lower()) if w not in _STOP})
    return " ".join(words)[:500]


def _gap_spaces(space_ids: list[int]) -> list[int]:
    # A request over many spaces files its gap in (at most) the first few.
    return sorted(set(space_ids))[:5]


def _query_vector(query: str) -> tuple[str, list[float]] | None:
    """(model key, vector) of a gap's question, or None without a provider that answers."""
    provider = providers.get_provider()
    if provider is None:
        return None
    try:
        return provider.model_key, provider.embed([query])[0]
    except providers.EmbeddingUnavailable:
        return None


def _open_gap_like(
    space_id: int, normalized: str, embedded: tuple[str, list[float]] | None
) -> Gap | None:
    """The open gap of the space with the same words or a very similar question (locked)."""
    open_gaps = Gap.objects.select_for_update().filter(space_id=space_id, status=Gap.Status.OPEN)
    gap = open_gaps.filter(normalized=normalized).first()
    if gap is None and embedded is not None:
        from pgvector.django import CosineDistance

        gap = (
            open_gaps.filter(model_key=embedded[0])
            .annotate(distance=CosineDistance("vector", embedded[1]))
            .filter(distance__lte=1 - GAP_SIMILAR)
            .order_by("distance")
            .first()
        )
    return gap


def _count_again(gap: Gap, *, query: str, source: str, note: str, now: dt.datetime) -> Gap:
    """One more occurrence of an open gap: its count, last seen, examples and notes."""
    examples = list(gap.examples)
    if query not in examples:
        examples = [*examples, query][-GAP_EXAMPLES:]
    notes = list(gap.notes)
    if note:
        notes = [*notes, note[:500]][-GAP_EXAMPLES:]
    Gap.objects.filter(pk=gap.pk).update(
        count=F("count") + 1,
        last_seen=now,
        examples=examples,
        notes=notes,
        source=Gap.Source.REPORTED if source == Gap.Source.REPORTED else gap.source,
    )
    gap.refresh_from_db()
    return gap


def gap_note(
    *,
    space_ids: list[int],
    query: str,
    source: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> list[Gap]:
    """Count a gap in each space: joined to an open gap with the same words or a very similar
    question, or opened as a new one."""
    query = (query or "").strip()[:2000]
    if not query:
        return []
    now = now or timezone.now()
    note = note.strip()
    normalized = normalize_query(query) or query.lower()[:500]
    embedded = _query_vector(query)
    gaps = []
    for space_id in _gap_spaces(space_ids):
        with transaction.atomic():
            gap = _open_gap_like(space_id, normalized, embedded)
            if gap is None:
                gap = Gap.objects.create(
                    space_id=space_id,
                    query=query,
                    normalized=normalized,
                    vector=embedded[1] if embedded else None,
                    model_key=embedded[0] if embedded else "",
                    source=source,
                    examples=[query],
                    notes=[note[:500]] if note else [],
                    first_seen=now,
                    last_seen=now,
                )
            else:
                gap = _count_again(gap, query=query, source=source, note=note, now=now)
            gaps.append(gap)
    return gaps


def usage_log_write(*, payload: dict) -> ContextRequest | None:
    """Store one context request (called from a Celery task, never in the request)."""
    created_at = dt.datetime.fromisoformat(payload["created_at"])
    token_id = payload.get("token_id")
    user_id = payload.get("user_id")
    if token_id and not ApiToken.objects.filter(pk=token_id).exists():
        token_id = None
    if user_id and not User.objects.filter(pk=user_id).exists():
        user_id = None
    results = payload.get("results") or []
    live_ids = set(
        Record.objects.filter(pk__in=[r["record_id"] for r in results]).values_list("pk", flat=True)
    )
    tool = (payload.get("tool") or "")[:200]
    with transaction.atomic():
        request = ContextRequest.objects.create(
            created_at=created_at,
            channel=payload["channel"],
            operation=payload.get("operation", "context")[:40],
            token_id=token_id,
            user_id=user_id,
            tool=tool,
            query=(payload.get("query") or "")[:2000],
            paths=[p[:500] for p in (payload.get("paths") or [])][:50],
            space_ids=payload.get("space_ids") or [],
            results=results,
            best_score=payload.get("best_score"),
            latency_ms=payload.get("latency_ms", 0.0),
            is_gap=bool(payload.get("is_gap")),
        )
        ContextResult.objects.bulk_create(
            [
                ContextResult(
                    request=request,
                    record_id=r["record_id"],
                    rank=i + 1,
                    score=r.get("score") or 0.0,
                    created_at=created_at,
                    tool=tool,
                )
                for i, r in enumerate(results)
                if r["record_id"] in live_ids
            ]
        )
        # The bundle served, kept as long as this entry (apps.retrieval.usage).
        usage.bundle_store(request=request, bundle=payload.get("bundle"))
    if payload.get("is_gap") and payload.get("query"):
        gap_note(
            space_ids=payload.get("space_ids") or [],
            query=payload["query"],
            source=Gap.Source.LOW_SCORE,
            now=created_at,
        )
    return request


def gap_report(*, principal, query: str, note: str = "", space: Space | None = None) -> list[Gap]:
    """A tool says "I needed to know this and you had nothing": counted as a gap right away."""
    # Gaps are listed to people and can become titles: no bidirectional or invisible characters.
    if isinstance(query, str):
        query = strip_invisible(query)
    if isinstance(note, str):
        note = strip_invisible(note)
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("Say what you were looking for.", details={"query": ["Required."]})
    if not isinstance(note, str):
        raise InvalidInput("The note must be text.", details={"note": ["Must be text."]})
    if len(query) > 2000 or len(note) > 2000:
        raise InvalidInput(
            "The query and note are at most 2,000 characters each.",
            details={
                name: ["At most 2,000 characters."]
                for name, value in (("query", query), ("note", note))
                if len(value) > 2000
            },
        )
    if "\x00" in query or "\x00" in note:
        raise InvalidInput("NUL characters are not allowed.", details={"query": ["NUL."]})
    # Gaps are shown to the space and can become record titles: no credentials in them.
    secret_scan.refuse_secrets({"query": query, "note": note}, what="gap's")
    visible = Space.objects.visible_to(principal)
    if space is not None:
        if not visible.filter(pk=space.pk).exists():
            raise NotFound(f"Space {space.slug!r} not found.")
        space_ids = [space.pk]
    else:
        space_ids = list(visible.values_list("pk", flat=True))
    if not space_ids:
        raise NotFound("No space is visible to this token.")
    return gap_note(space_ids=space_ids, query=query, note=note, source=Gap.Source.REPORTED)


def gap_dismiss(*, gap: Gap, actor) -> Gap:
    """Editors of the gap's space may dismiss it; a later occurrence opens a new gap."""
    if not access.can_view(actor, gap.space):
        raise NotFound("Gap not found.")
    if not access.can_edit(actor, gap.space):
        raise Forbidden(f"You need to be an editor of {gap.space.name} to dismiss gaps.")
    now = timezone.now()
    Gap.objects.filter(pk=gap.pk, status=Gap.Status.OPEN).update(
        status=Gap.Status.DISMISSED, dismissed_at=now, dismissed_by=access.user_of(actor)
    )
    gap.refresh_from_db()
    return gap


def gap_answer(*, gap_id: int, record: Record, actor) -> Gap | None:
    """Close an open gap of the record's space as answered by `record` (written from the gap
    with "Create record from this gap"); a later occurrence opens a new gap. Returns the gap,
    or None when there is no such open gap or the actor may not edit the space."""
    if not access.can_edit(actor, record.space):
        return None
    updated = Gap.objects.filter(
        pk=gap_id, space_id=record.space_id, status=Gap.Status.OPEN
    ).update(
        status=Gap.Status.ANSWERED,
        answered_by=record,
        dismissed_at=timezone.now(),
        dismissed_by=access.user_of(actor),
    )
    return Gap.objects.get(pk=gap_id) if updated else None


def usage_prune(*, older_than_days: int) -> int:
    """Drop usage-log entries older than the retention period (their per-record rows go with
    them, ON DELETE CASCADE); 0 keeps everything. Gaps are kept: they are counted, not stored
    per request. Returns how many requests were deleted."""
    if older_than_days <= 0:
        return 0
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted = ContextRequest.objects.filter(created_at__lt=cutoff).delete()[1]
    return deleted.get(ContextRequest._meta.label, 0)

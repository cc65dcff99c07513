"""Celery tasks: embeddings after commit, the catch-up sweep, and the usage log."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from apps.records.models import Record
from apps.retrieval import providers, services

logger = logging.getLogger(__name__)

SWEEP_BATCH = 256


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def embed_record(self, record_id: int) -> None:
    """(Re-)embed one record. A provider outage is retried with backoff; the periodic sweep
    (`embed_missing`) catches whatever is still missing after that."""
    if not Record.objects.filter(pk=record_id).exists():
        return
    try:
        services.embed_records(record_ids=[record_id])
    except providers.EmbeddingUnavailable as exc:
        logger.warning("Embedding record %s failed: %s", record_id, exc)
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 900)) from exc


@shared_task(acks_late=True, ignore_result=True)
def embed_missing(limit: int = 5000) -> int:
    """Embed active records that have no vector under the current model (in batches)."""
    model_key = providers.current_model_key()
    if model_key is None:
        return 0
    ids = list(
        services.records_needing_embedding(model_key)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for start in range(0, len(ids), SWEEP_BATCH):
        try:
            done += services.embed_records(record_ids=ids[start : start + SWEEP_BATCH])
        except providers.EmbeddingUnavailable as exc:
            logger.warning("Embedding sweep stopped: %s", exc)
            break
    return done


@shared_task(acks_late=True, ignore_result=True)
def log_context_request(payload: dict) -> None:
    """Write one usage-log entry (and count a gap when nothing relevant was found)."""
    services.usage_log_write(payload=payload)


@shared_task(acks_late=True, ignore_result=True)
def prune_usage() -> int:
    """Drop usage-log entries older than CONTEXTKB_USAGE_RETENTION_DAYS (0 = keep them all)."""
    deleted = services.usage_prune(older_than_days=settings.CONTEXTKB_USAGE_RETENTION_DAYS)
    if deleted:
        logger.info("usage log: %s requests older than %s days deleted", deleted,
                    settings.CONTEXTKB_USAGE_RETENTION_DAYS)  # fmt: skip
    return deleted

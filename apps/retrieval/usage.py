"""Hand context requests to the usage log without slowing the request.

The payload is built in the request (cheap), then a background thread enqueues it to Celery,
where `tasks.log_context_request` writes it; a broker outage loses log entries, never requests.

A context bundle travels in the same payload (the dict already built for the response, not a
copy) and is stored beside its log entry by `bundle_store`, in the worker: the JSON form is
rendered there, so a request pays nothing for keeping it. It is deleted with the entry
(CONTEXTKB_USAGE_RETENTION_DAYS).
"""

from __future__ import annotations

import logging
import queue
import threading

from django.conf import settings
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import ApiToken
from apps.retrieval import bundle as bundle_module

logger = logging.getLogger(__name__)

_queue: queue.Queue = queue.Queue(maxsize=10_000)
_thread: threading.Thread | None = None
_lock = threading.Lock()
# Bundles waiting in the queue hold their text in memory: past this many characters (a broker
# outage, a burst of huge budgets) further entries are logged without their bundle.
MAX_QUEUED_BUNDLE_CHARS = 50_000_000
_queued_chars = 0


def _bundle_chars(payload: dict) -> int:
    bundle = payload.get("bundle")
    # The markdown, and the JSON about as long again (its items hold the same texts).
    return 2 * len(bundle["markdown"]) if bundle else 0


def _account(chars: int) -> None:
    global _queued_chars
    with _lock:
        _queued_chars += chars


def is_gap(bundle: dict) -> bool:
    return bool(bundle.get("query")) and bundle["_best_match"] < settings.CONTEXTKB_GAP_THRESHOLD


def build_payload(
    *,
    channel: str,
    operation: str,
    principal,
    tool: str,
    bundle: dict,
    latency_ms: float,
) -> dict:
    token = principal if isinstance(principal, ApiToken) else None
    user = access.user_of(principal)
    payload = {
        "created_at": timezone.now().isoformat(),
        "channel": channel,
        "operation": operation,
        "token_id": token.pk if token else None,
        "user_id": user.pk if user else None,
        "tool": (tool or "")[:200],
        "query": bundle.get("query", ""),
        "paths": bundle.get("paths", []),
        "space_ids": bundle.get("_space_ids", []),
        "results": [
            {
                "key": i["key"],
                "record_id": i["id"],
                "score": i["score"],
                **({"version": i["version"], "revision": i["revision"]} if "version" in i else {}),
            }
            for i in bundle.get("items", [])
        ],
        "best_score": bundle.get("_best_match"),
        "latency_ms": round(latency_ms, 2),
        "is_gap": is_gap(bundle) if "_best_match" in bundle else False,
    }
    if bundle.get("bundle_id"):
        payload["bundle"] = {
            "id": bundle["bundle_id"],
            "body": bundle_module.json_body(bundle),
            # What was sent, when it was markdown (MCP appends a "Left out" line).
            "markdown": bundle.get("_served_markdown", bundle.get("markdown", "")),
            "format": bundle.get("_served_format", "json"),
            "as_of": bundle.get("as_of"),
        }
    return payload


def bundle_store(*, request, bundle: dict | None):
    """Keep a served bundle beside its usage-log entry `request` (in the worker's transaction)."""
    from apps.retrieval.models import ContextBundle

    if not bundle or not isinstance(bundle.get("id"), str):
        return None
    return ContextBundle.objects.create(
        id=bundle["id"][:32],
        request=request,
        json=bundle_module.render_json(bundle["body"]).decode(),
        markdown=bundle.get("markdown") or "",
        served_format=(bundle.get("format") or "json")[:10],
        as_of=bundle.get("as_of"),
        created_at=request.created_at,
    )


def _worker() -> None:
    from apps.retrieval.tasks import log_context_request

    while True:
        payload = _queue.get()
        try:
            # A short argsrepr: Celery would otherwise repr the whole payload for the message
            # headers, CPU taken from the requests this process serves.
            log_context_request.apply_async(
                args=(payload,),
                argsrepr=f"({payload['channel']} {payload['operation']}, "
                f"{len(payload['results'])} results)",
                kwargsrepr="{}",
            )
        except Exception:
            logger.warning("Could not enqueue a usage-log entry", exc_info=True)
        finally:
            _account(-_bundle_chars(payload))
            _queue.task_done()


def dispatch(payload: dict) -> None:
    """Queue a payload for the usage log (drops it, with a warning, if the queue is full)."""
    global _thread
    if not settings.CONTEXTKB_USAGE_LOG:
        return
    if _thread is None or not _thread.is_alive():
        with _lock:
            if _thread is None or not _thread.is_alive():
                _thread = threading.Thread(target=_worker, name="usage-log", daemon=True)
                _thread.start()
    chars = _bundle_chars(payload)
    if chars and _queued_chars + chars > MAX_QUEUED_BUNDLE_CHARS:
        logger.warning("Usage-log queue holds too much bundle text; logging an entry without it")
        payload = {k: v for k, v in payload.items() if k != "bundle"}
        chars = 0
    _account(chars)
    try:
        _queue.put_nowait(payload)
    except queue.Full:
        _account(-chars)
        logger.warning("Usage-log queue full; dropping an entry")


def flush(timeout: float = 5.0) -> None:
    """Wait until queued payloads have been handed to Celery (for tests and shutdown)."""
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while _queue.unfinished_tasks and not deadline.is_set():
            deadline.wait(0.01)
    finally:
        timer.cancel()

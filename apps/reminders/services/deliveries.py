"""Digest deliveries: planned as rows, claimed for sending with one conditional UPDATE, so
retries and overlapping beat runs never send the same digest twice."""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import parseaddr

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from apps.reminders.models import Delivery

log = logging.getLogger(__name__)


def delivery_plan(*, user_ids: list[int], kind: str, period: str) -> list[int]:
    """Create the (user, kind, period) email rows that do not exist yet; returns the new rows'
    ids (chat rows: apps.chat.services.plan).

    The unique constraint makes this safe under two beat processes: only one INSERT wins."""
    if not user_ids:
        return []
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (user_id, kind, period, channel, payload, status, attempts,
                                 item_count, last_error, message_id, created_at)
            SELECT u, %s, %s, 'email', '{{}}'::jsonb, 'pending', 0, 0, '', '', %s
            FROM unnest(%s::bigint[]) AS u
            ON CONFLICT (user_id, kind, period) WHERE channel = 'email' DO NOTHING
            RETURNING id
            """,  # noqa: S608
            [kind, period, timezone.now(), user_ids],
        )
        return [row[0] for row in cursor.fetchall()]


def delivery_message_id(*, delivery: Delivery) -> str:
    """The Message-ID of every send of this delivery: derived from the row, so a second attempt
    after a killed worker carries the same id and mail systems can drop a duplicate."""
    _, address = parseaddr(settings.REMINDERS_FROM_EMAIL)
    domain = address.rpartition("@")[2] or "localhost"
    return (
        f"<contextkb.{delivery.kind}.{delivery.period}.u{delivery.user_id}.d{delivery.pk}@{domain}>"
    )


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Take a delivery for sending with one conditional UPDATE: pending or failed → sending.

    Whoever gets the row sends it; a second worker, a redelivered task or a retry after a
    successful send gets None. A worker killed mid-send leaves the row `sending` until its lease
    runs out; then `delivery_reclaim_stuck` makes it pending again (see there)."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED]
    ).update(status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("user").get(pk=delivery_id)
    message_id = delivery_message_id(delivery=delivery)
    if delivery.message_id != message_id:
        # Stored before the send, so the admin (and a test) can see which id is on the wire.
        Delivery.objects.filter(pk=delivery_id).update(message_id=message_id)
        delivery.message_id = message_id
    return delivery


def delivery_reclaim_stuck(*, periods: list[str], now: dt.datetime | None = None) -> list[int]:
    """Make deliveries of `periods` (and chat notices) that have been `sending` longer than the
    lease pending again.

    Such a row was claimed by a worker that died (SIGKILL, OOM, host loss) before it could
    finish: the lease (REMINDERS_SEND_LEASE_SECONDS) is longer than Celery's hard time limit, so
    no live send can still hold it. One conditional UPDATE per run: when two planners race, the
    second one re-checks the row after the first committed, finds it no longer `sending` past
    its lease, and takes nothing. The pending row is then claimed by exactly one send task.

    Residual risk: if the dead worker's message had already been accepted by the SMTP server,
    the owner gets a second copy — with the same Message-ID, which most mail systems drop."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.REMINDERS_SEND_LEASE_SECONDS)
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
               SET status = 'pending',
                   last_error = 'Re-queued: the worker that claimed it at '
                                || to_char(claimed_at AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD HH24:MI:SS')
                                || ' UTC did not finish within the lease.'
             WHERE status = 'sending' AND claimed_at < %s
               AND (period = ANY(%s) OR kind = 'notice')
            RETURNING id
            """,  # noqa: S608
            [cutoff, periods],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        log.warning("Re-queued %d digest deliveries stuck in 'sending': %s", len(ids), ids)
    return ids


def delivery_retry(*, ids: list[int]) -> list[int]:
    """Make failed (or given-up) deliveries pending again, for an admin's "send again"; returns
    the ids that were. One conditional UPDATE: rows sent, sending or empty are left alone, so
    this never sends a digest twice."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET status = 'pending'
            WHERE id = ANY(%s) AND status IN ('failed', 'gave_up')
            RETURNING id
            """,  # noqa: S608 - table name is ours, values are parameters
            [list(ids)],
        )
        return sorted(row[0] for row in cursor.fetchall())


def delivery_finish(
    *, delivery: Delivery, status: str, item_count: int = 0, error: str = "", message_id: str = ""
) -> None:
    fields = {"status": status, "item_count": item_count, "last_error": error[:5000]}
    if status == Delivery.Status.SENT:
        fields["sent_at"] = timezone.now()
        fields["message_id"] = message_id[:300]
    Delivery.objects.filter(pk=delivery.pk).update(**fields)

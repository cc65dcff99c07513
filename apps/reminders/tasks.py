"""Celery tasks of the staleness engine. Thin: each calls services / selectors / emails."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.chat import services as chat
from apps.chat.transport import SendError
from apps.records import services as record_services
from apps.reminders import emails, selectors, services
from apps.reminders.models import Delivery

log = logging.getLogger(__name__)
MAX_SEND_RETRIES = 5


@shared_task(acks_late=True)
def sweep() -> dict:
    """Hourly: valid-until evidence, orphans, and every record's time-based freshness; then
    create-form submission tokens past their dedup window are forgotten."""
    result = services.sweep()
    result["submissions_pruned"] = record_services.create_submission_prune()
    return result


@shared_task(acks_late=True)
def snapshot() -> int:
    """Nightly (and safe to repeat): a full sweep (every record's state, owners who are no
    longer members), then today's freshness counts per space for the trend chart."""
    services.sweep(full=True)
    return services.snapshot_health()


def periods(now: dt.datetime) -> dict[str, str | None]:
    """The period keys a beat run at `now` may send; None before the daily send hour."""
    local = timezone.localtime(now)
    if local.hour < settings.REMINDERS_DIGEST_HOUR:
        return {"daily": None, "weekly": None}
    year, week, _ = local.isocalendar()
    return {"daily": local.date().isoformat(), "weekly": f"{year}-W{week:02d}"}


@shared_task(acks_late=True)
def plan_digests() -> int:
    """Hourly: one delivery row per owner per period (and per admin per week for escalations),
    then a send task per row. Overlapping runs create each row once (unique constraint); a
    pending row whose task got lost is enqueued again — the claim keeps the send single. A row
    left "sending" past REMINDERS_SEND_LEASE_SECONDS (its worker died) is re-queued first."""
    now = timezone.now()
    keys = periods(now)
    daily, weekly = keys["daily"], keys["weekly"]
    if daily is None or weekly is None:  # both None before the send hour, or both set
        return 0
    planned = 0
    # At most one digest a local day for daily users and one in any seven days for weekly
    # users, counting the digests of either frequency (so changing it never adds one).
    start_of_today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    for frequency, period, since in (
        (User.DigestFrequency.DAILY, daily, start_of_today),
        (User.DigestFrequency.WEEKLY, weekly, start_of_today - dt.timedelta(days=6)),
    ):
        ids = selectors.users_with_digest_items(frequency=frequency, now=now)
        ids = selectors.without_recent_digest(user_ids=ids, since=since)
        # Email and chat (each person's choice) are planned together, so one run covers both.
        planned += len(
            services.delivery_plan(
                user_ids=chat.wants_email(user_ids=ids), kind=Delivery.Kind.DIGEST, period=period
            )
        )
        planned += len(chat.plan(user_ids=ids, kind=Delivery.Kind.DIGEST, period=period, now=now))
    admins = selectors.admins_with_escalations(now=now)
    planned += len(
        services.delivery_plan(
            user_ids=chat.wants_email(user_ids=admins),
            kind=Delivery.Kind.ESCALATION,
            period=weekly,
        )
    )
    planned += len(
        chat.plan(user_ids=admins, kind=Delivery.Kind.ESCALATION, period=weekly, now=now)
    )
    # Rows whose worker died mid-send (left "sending" past the lease) become pending again.
    services.delivery_reclaim_stuck(periods=[daily, weekly], now=now)
    # Chat notices (apps.chat.services.notify) have their own keys as periods: a pending one
    # whose task got lost is sent by this run too.
    to_send = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .filter(Q(period__in=[keys["daily"], keys["weekly"]]) | Q(kind=Delivery.Kind.NOTICE))
        .values_list("id", flat=True)
    )
    for delivery_id in to_send:
        transaction.on_commit(partial(send_delivery.delay, delivery_id))
    return planned


@shared_task(
    name="reminders.send_delivery",
    bind=True,
    acks_late=True,
    max_retries=MAX_SEND_RETRIES,
)
def send_delivery(self, delivery_id: int) -> str:
    """Send one digest, exactly once: claim the row, send, mark it sent. SMTP failures mark it
    failed and retry with exponential backoff; after the last retry it is marked gave_up."""
    delivery = services.delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        return "not claimed"  # already sent, being sent, or gone
    if delivery.channel == Delivery.Channel.CHAT:
        return _send_chat(self, delivery)
    user = delivery.user
    if user is None or not user.is_active or not user.email:
        services.delivery_finish(delivery=delivery, status=Delivery.Status.EMPTY)
        return "no recipient"
    if delivery.kind == Delivery.Kind.DIGEST:
        groups = selectors.digest_items(user=user)
        build = emails.digest
    else:
        groups = selectors.escalation_items(user=user)
        build = emails.escalation
    count = selectors.total_of(groups)
    if not count:
        services.delivery_finish(delivery=delivery, status=Delivery.Status.EMPTY)
        return "empty"
    try:
        message_id = build(
            user=user, groups=groups, period=delivery.period, message_id=delivery.message_id
        )
    except (smtplib.SMTPException, OSError) as exc:
        gave_up = self.request.retries >= MAX_SEND_RETRIES
        services.delivery_finish(
            delivery=delivery,
            status=Delivery.Status.GAVE_UP if gave_up else Delivery.Status.FAILED,
            item_count=count,
            error=f"{type(exc).__name__}: {exc}",
        )
        if gave_up:
            log.error("Giving up on delivery %s: %s", delivery_id, exc)
            return "gave up"
        raise self.retry(
            exc=exc, countdown=settings.REMINDERS_RETRY_BASE_SECONDS * 2**self.request.retries
        ) from exc
    services.delivery_finish(
        delivery=delivery, status=Delivery.Status.SENT, item_count=count, message_id=message_id
    )
    return "sent"


def _send_chat(task, delivery: Delivery) -> str:
    """A claimed chat delivery: post it, then mark it sent. Failures follow the email's policy
    (failed, retried with backoff, gave_up after the last retry), except that an answer no
    retry can change (a revoked webhook: 403, 404, 410, Slack's channel_not_found) gives up at
    once. Either way the error shows in Deliveries, where "Send again" re-queues it."""
    try:
        status, count = chat.deliver(delivery=delivery)
    except SendError as exc:
        gave_up = exc.permanent or task.request.retries >= MAX_SEND_RETRIES
        services.delivery_finish(
            delivery=delivery,
            status=Delivery.Status.GAVE_UP if gave_up else Delivery.Status.FAILED,
            item_count=exc.count,
            error=str(exc),
        )
        if gave_up:
            log.error("Giving up on chat delivery %s: %s", delivery.pk, exc)
            return "gave up"
        raise task.retry(
            exc=exc, countdown=settings.REMINDERS_RETRY_BASE_SECONDS * 2**task.request.retries
        ) from exc
    services.delivery_finish(delivery=delivery, status=status, item_count=count)
    return str(status)

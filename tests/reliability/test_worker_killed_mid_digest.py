"""SIGKILL the Celery worker in the middle of a digest run, start a new one: no owner gets the
digest twice, and every digest is delivered — the one whose worker died before the SMTP server
took it is sent again once its lease (REMINDERS_SEND_LEASE_SECONDS) has run out."""

import asyncio
import datetime as dt
import email
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Membership
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.factories import MembershipFactory, make_record
from tests.reliability.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)

CELERY = str(Path(sys.executable).with_name("celery"))
OWNERS = 4
HOLD_AT = 2  # the SMTP server holds the 2nd digest while the worker is killed


class SlowInbox:
    """An SMTP sink that keeps the HOLD_AT-th message waiting until the test releases it."""

    def __init__(self):
        self.recipients: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.recipients.extend(envelope.rcpt_tos)
        if len(self.recipients) == HOLD_AT:
            self.holding.set()
            self.release.wait(timeout=30)
        return "250 Message accepted for delivery"


class InboxHoldingAtMailFrom:
    """An SMTP sink that keeps the HOLD_AT-th session waiting at MAIL FROM (before DATA) until
    the test releases it; it records the Message-ID of every message it accepts."""

    def __init__(self):
        self.mail_froms = 0
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_froms += 1
        if self.mail_froms == HOLD_AT:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message_id = email.message_from_bytes(envelope.content)["Message-ID"]
        self.received.extend((rcpt, message_id) for rcpt in envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def _worker(queue: str, smtp_port: int, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contextkb.settings",
        "CONTEXTKB_DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
        "REMINDERS_DIGEST_HOUR": "0",
        "CONTEXTKB_EMBEDDINGS_PROVIDER": "none",
        "LOG_FORMAT": "text",
        **extra_env,
    }
    return subprocess.Popen(
        [CELERY, "-A", "contextkb", "worker", "-Q", queue, "--pool=solo", "-n", f"{queue}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _owners_with_stale_records(space):
    owners = [
        MembershipFactory(space=space, role=Membership.Role.EDITOR, user__username=f"o{n}").user
        for n in range(OWNERS)
    ]
    for owner in owners:
        make_record(
            space=space,
            actor=owner,
            owner_user=owner,
            kind="guardrail",
            title=f"Guardrail of {owner.username}",
            now=timezone.now() - dt.timedelta(days=75),
        )
    reminders.sweep(full=True)
    return owners


def test_sigkill_mid_digest_then_restart_sends_no_digest_twice(space):
    owners = _owners_with_stale_records(space)
    inbox = SlowInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    queue = f"ckbkill-{uuid.uuid4().hex[:10]}"
    first = _worker(queue, smtp.port)
    second = None
    try:
        tasks.plan_digests.apply_async(queue=queue)
        assert inbox.holding.wait(timeout=60), "the worker never reached the 2nd digest"
        first.send_signal(signal.SIGKILL)  # mid-digest: one sent, one on the wire, rest queued
        first.wait(timeout=10)
        inbox.release.set()
        statuses = sorted(Delivery.objects.values_list("status", flat=True))
        assert statuses.count("sent") == 1 and statuses.count("sending") == 1, statuses

        second = _worker(queue, smtp.port)
        # The next beat run re-enqueues the pending rows (a lost or redelivered task is harmless:
        # the conditional claim lets exactly one send happen).
        tasks.plan_digests.apply_async(queue=queue)
        _wait_for(
            lambda: not Delivery.objects.filter(status="pending").exists(),
            what="the restarted worker to send the rest",
        )
        time.sleep(1.0)  # any duplicate would arrive now
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        smtp.stop()

    emails = sorted(owner.email for owner in owners)
    assert sorted(inbox.recipients) == emails  # each owner exactly once
    rows = dict(Delivery.objects.values_list("user__email", "status"))
    # The digest that was on the wire at the kill was delivered; its row stays "sending" (shown
    # as stuck in the admin) until its lease (default: hard time limit + 60 s) runs out.
    assert sorted(rows.values()).count("sent") == OWNERS - 1
    assert Delivery.objects.count() == OWNERS


LEASE = 3  # seconds; the default is CELERY_TASK_TIME_LIMIT + 60


def test_sigkill_before_smtp_data_then_restart_delivers_each_digest_exactly_once(space):
    owners = _owners_with_stale_records(space)
    inbox = InboxHoldingAtMailFrom()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    queue = f"ckbkill-{uuid.uuid4().hex[:10]}"
    lease = {"REMINDERS_SEND_LEASE_SECONDS": str(LEASE)}
    first = _worker(queue, smtp.port, **lease)
    second = None
    try:
        tasks.plan_digests.apply_async(queue=queue)
        assert inbox.holding.wait(timeout=60), "the worker never reached the 2nd digest"
        first.send_signal(signal.SIGKILL)  # claimed, connected, MAIL FROM sent; no DATA yet
        first.wait(timeout=10)
        inbox.release.set()
        stuck = Delivery.objects.select_related("user").get(status="sending")
        assert stuck.attempts == 1 and stuck.message_id
        [(first_recipient, _)] = inbox.received  # the 1st digest; the 2nd never reached DATA
        assert first_recipient != stuck.user.email

        second = _worker(queue, smtp.port, **lease)
        # Beat's next run after the lease: the stuck row is re-queued along with the pending ones.
        time.sleep(max(0.0, (stuck.claimed_at + dt.timedelta(seconds=LEASE) - timezone.now())
                       .total_seconds()) + 0.5)  # fmt: skip
        tasks.plan_digests.apply_async(queue=queue)
        _wait_for(
            lambda: Delivery.objects.filter(status="sent").count() == OWNERS,
            what="the restarted worker to send every digest",
        )
        # One more beat run (lease long gone for everything): nothing is sent again.
        tasks.plan_digests.apply_async(queue=queue)
        time.sleep(1.5)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        smtp.stop()

    assert sorted(rcpt for rcpt, _ in inbox.received) == sorted(o.email for o in owners)
    resent = dict(inbox.received)[stuck.user.email]
    assert resent == stuck.message_id  # the id chosen at the first claim, before the kill
    assert resent == f"<contextkb.digest.{stuck.period}.u{stuck.user_id}.d{stuck.pk}@localhost>"
    assert len({message_id for _, message_id in inbox.received}) == OWNERS
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == ("sent", 2)

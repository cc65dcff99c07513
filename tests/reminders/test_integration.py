"""Real parts end to end: a Celery worker process on the real broker sends the digest to a real
SMTP server; the "Still true" link is followed against the live server; a second beat run sends
nothing."""

import datetime as dt
import email
import email.policy
import re
import time

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from apps.accounts.models import User
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery, HealthSnapshot
from tests.factories import make_record
from tests.live import free_port
from tests.workers import celery_worker, wait_for


class Inbox:
    def __init__(self):
        self.messages = []
        self.raw = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook
        self.raw.append(envelope.content)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def worker(smtp, live_server, transactional_db):
    """A `celery -A contextkb worker` process on a private queue of the configured broker (Redis
    when CELERY_BROKER_URL is set, the filesystem broker otherwise), using this test's database,
    the test SMTP server and the live server's URL for links."""
    controller, _ = smtp
    with celery_worker(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(controller.port),
        SMTP_STARTTLS="false",
        CONTEXTKB_SITE_URL=live_server.url,
        REMINDERS_DIGEST_HOUR="0",
        LOG_FORMAT="text",
    ) as queue:
        yield queue


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_worker_sends_one_digest_and_its_still_true_link_verifies(
    smtp, worker, live_server, space, owner
):
    _, inbox = smtp
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    assert Record.objects.get(pk=record.pk).freshness == "stale"

    tasks.plan_digests.apply_async(queue=worker)
    wait_for(lambda: inbox.messages, what="the digest email")

    [message] = inbox.messages
    assert message["To"] == owner.email
    assert message["Subject"] == "1 record to review — GRD-1 Never log card numbers"
    # On the wire, List-Unsubscribe is a plain <URL> that mail clients can act on.
    [header] = re.findall(rb"^List-Unsubscribe: (.*)$", inbox.raw[0], re.M)
    assert re.fullmatch(
        rf"<{re.escape(live_server.url)}/r/unsubscribe/[^\s>]+/>".encode(), header.strip()
    )
    text, html = _parts(message)
    # Created 75 days ago, reviewed every 60: 15 days overdue.
    # The text part says what the HTML part says.
    lines = text.replace("\r\n", "\n")
    assert "GRD-1 Never log card numbers [stale]\n  Review overdue by 15 days" in lines
    assert ">Never log card numbers</a>" in html and "Review overdue by 15 days" in html
    [still_true] = re.findall(r"Still true: (\S+)", text)
    assert still_true.startswith(live_server.url)
    assert f'href="{still_true}"' in html

    with httpx.Client(timeout=10) as http:
        confirm = http.get(still_true)
        assert confirm.status_code == 200
        assert "Is GRD-1 still true?" in confirm.text
        done = http.post(still_true)
        assert done.status_code == 200
        assert "GRD-1 is verified" in done.text
    record = Record.objects.get(pk=record.pk)
    assert record.freshness == "fresh"
    assert record.verifications.get().actor == owner
    assert Delivery.objects.get().status == "sent"

    # The beat fires again and the old send task is redelivered: nothing new goes out. The
    # snapshot task queued last tells us when the worker has got through them.
    tasks.plan_digests.apply_async(queue=worker)
    tasks.send_delivery.apply_async(args=[Delivery.objects.get().pk], queue=worker)
    tasks.snapshot.apply_async(queue=worker)
    wait_for(lambda: HealthSnapshot.objects.exists(), what="the worker to finish its queue")
    time.sleep(0.5)
    assert len(inbox.messages) == 1
    assert Delivery.objects.count() == 1

    # The mail provider's one-click unsubscribe (RFC 8058) works against the live server.
    with httpx.Client(timeout=10) as http:
        response = http.post(
            header.strip()[1:-1].decode(),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    assert User.objects.get(pk=owner.pk).digest_frequency == "off"

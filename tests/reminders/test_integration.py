"""Real parts end to end: a Celery worker process on the real broker sends the digest to a real
SMTP server; the "Still true" link is followed against the live server; a second beat run sends
nothing."""

import datetime as dt
import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery, HealthSnapshot
from tests.factories import make_record

BASE_DIR = Path(settings.BASE_DIR)
CELERY = str(Path(sys.executable).with_name("celery"))


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def worker(smtp, live_server, transactional_db):
    """A `celery -A contextkb worker` process on a private queue of the configured broker, using
    this test's database, the test SMTP server and the live server's URL for links."""
    controller, _ = smtp
    queue = f"ckbtest-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contextkb.settings",
        "CONTEXTKB_DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(controller.port),
        "SMTP_STARTTLS": "false",
        "CONTEXTKB_SITE_URL": live_server.url,
        "REMINDERS_DIGEST_HOUR": "0",
        "LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [
            CELERY,
            "-A",
            "contextkb",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "-n",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield queue
    proc.terminate()
    try:
        output, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    print(output[-5000:])  # shown when the test fails


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"Timed out waiting for {what}")


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
    _wait_for(lambda: inbox.messages, what="the digest email")

    [message] = inbox.messages
    assert message["To"] == owner.email
    assert message["Subject"].startswith("1 record to review")
    assert message["List-Unsubscribe"].startswith(f"<{live_server.url}/r/unsubscribe/")
    text, html = _parts(message)
    assert "GRD-1 Never log card numbers [stale, 15 days]" in text
    assert "Never log card numbers</a>" in html
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
    _wait_for(lambda: HealthSnapshot.objects.exists(), what="the worker to finish its queue")
    time.sleep(0.5)
    assert len(inbox.messages) == 1
    assert Delivery.objects.count() == 1

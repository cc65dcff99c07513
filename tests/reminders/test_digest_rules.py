"""Digest emails as received by a real SMTP server (aiosmtpd): order, frequency changes, wording.

Each send runs the beat task and the send tasks in this process (the worker's job, inline); the
message goes over SMTP to the sink."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import TestCase
from django.utils import timezone

from apps.accounts.models import User
from apps.records import services
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.retrieval.models import ContextRequest, ContextResult
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _send_planned():
    """Run the beat task, then every send task it queued."""
    ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: ids.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    return [tasks.send_delivery.run(pk) for pk in ids]


def _fetched(record, times: int) -> None:
    """`record` was returned by `times` context fetches (rows as the usage log writes them)."""
    for _ in range(times):
        request = ContextRequest.objects.create(channel="api", operation="context", latency_ms=5)
        ContextResult.objects.create(request=request, record=record, rank=1, score=1.0)


@pytest.fixture
def mixed_states(space, owner):
    """One record in each state needing a look, all owned by `owner`: a much-used guardrail
    merely due in 5 days, an intent 10 days past its review date, and a decision that a
    record it depends on made suspect today."""
    now = timezone.now()
    due = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=now - dt.timedelta(days=55),  # reviewed every 60 days: due in 5
    )
    _fetched(due, 6)
    stale = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="intent",
        title="Self-serve first",
        now=now - dt.timedelta(days=130),  # reviewed every 120 days: 10 days stale
    )
    base = make_record(space=space, actor=owner, title="One PSP", owner_user=owner)
    suspect = make_record(space=space, actor=owner, owner_user=owner, title="Retry in the PSP")
    services.record_link(source=suspect, target=base, type="depends_on", actor=owner)
    services.record_update(
        record=base, actor=owner, expected_version=base.version, changes={"body": "Changed"}
    )
    services.record_verify(record=base, actor=owner)
    reminders.sweep(full=True)  # as the nightly sweep would have: every cached state is current
    return due, stale, suspect


def test_digest_lists_suspect_and_stale_before_a_record_merely_due(
    space, owner, mixed_states, smtp_inbox
):
    due, stale, suspect = mixed_states
    assert _send_planned() == ["sent"]
    [message] = smtp_inbox.messages
    text, html = smtp_inbox.parts(message)
    # The subject names the most urgent record: the suspect one, not the due one.
    assert message["Subject"] == f"3 records to review — {suspect.key} {suspect.title}"
    order = [suspect.key, stale.key, due.key]
    assert sorted(order, key=text.index) == order
    assert sorted(order, key=html.index) == order


def test_a_was_edited_reason_links_to_the_diff_in_both_parts(
    space, owner, mixed_states, smtp_inbox
):
    _due, _stale, _suspect = mixed_states
    _send_planned()
    text, html = smtp_inbox.parts(smtp_inbox.messages[0])
    diff = "http://testserver/s/payments/DEC-1/history/?a=1&amp;b=2"
    assert "'One PSP' was edited" in text
    assert diff.replace("&amp;", "&") in text
    assert f'href="{diff}"' in html


def test_text_and_html_parts_say_the_same_with_correct_plurals(space, owner, smtp_inbox):
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=timezone.now() - dt.timedelta(days=61),
    )
    _fetched(record, 1)
    reminders.sweep(full=True)
    _send_planned()
    text, html = smtp_inbox.parts(smtp_inbox.messages[0])
    for part in (text, html):
        assert "1 of your records needs a look" in part
        assert "1 of your record needs" not in part
        assert "fetched 1 time by AI tools in 30 days" in part
        assert "Review overdue by 1 day (due" in part
    assert "used 1 times" not in text


def test_switching_daily_to_weekly_right_after_the_daily_digest_sends_nothing_more(
    space, owner, mixed_states, smtp_inbox
):
    # A fixed morning: "the following days of the week" are calendar days, so a run at 23:55
    # plus six days and ten minutes would already be the seventh day (and rightly send).
    wednesday = timezone.make_aware(dt.datetime(2026, 12, 9, 9, 0))
    with time_machine.travel(wednesday):
        assert _send_planned() == ["sent"]
        reminders.digest_frequency_set(user=owner, frequency=User.DigestFrequency.WEEKLY)
    # The next hourly beat minutes later, and the following days of the week: nothing.
    for days in (0, 1, 3, 6):
        with time_machine.travel(wednesday + dt.timedelta(days=days, minutes=10)):
            assert _send_planned() == []
    assert len(smtp_inbox.messages) == 1
    # A week after the last one, the weekly digest comes.
    with time_machine.travel(wednesday + dt.timedelta(days=7, minutes=10)):
        assert _send_planned() == ["sent"]
    assert len(smtp_inbox.messages) == 2


def test_a_weekly_digest_is_not_followed_by_another_when_the_week_rolls_over(
    space, owner, mixed_states, smtp_inbox
):
    owner.digest_frequency = User.DigestFrequency.WEEKLY
    owner.save(update_fields=["digest_frequency"])
    sunday = timezone.make_aware(dt.datetime(2026, 12, 6, 9, 0))
    with time_machine.travel(sunday):
        assert _send_planned() == ["sent"]
    # Monday is another ISO week: still no second digest the next morning.
    with time_machine.travel(sunday + dt.timedelta(days=1)):
        assert _send_planned() == []
    with time_machine.travel(sunday + dt.timedelta(days=7)):
        assert _send_planned() == ["sent"]
    assert len(smtp_inbox.messages) == 2
    subjects = [m["Subject"] for m in smtp_inbox.messages]
    assert all(re.match(r"\d+ records to review", s) for s in subjects)

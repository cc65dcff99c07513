"""The freshness badge never contradicts the dates shown beside it, whether or not the hourly
sweep has run (it has not, in any of these tests)."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.records import services
from apps.records.models import Record
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _page(client, record) -> str:
    url = reverse("web:record_detail", kwargs={"slug": record.space.slug, "key": record.key})
    return client.get(url).content.decode()


def _badges(html: str) -> list[str]:
    return re.findall(r'class="badge fresh-(\w+)"', html)


def test_a_record_past_its_review_date_is_stale_before_the_sweep_looks(as_user, owner, space):
    record = make_record(space=space, actor=owner, title="Ledger in Postgres", owner_user=owner)
    # Its review date passed 10 days ago; the hourly sweep only looks two days back.
    Record.objects.filter(pk=record.pk).update(
        next_review_at=timezone.now() - dt.timedelta(days=10)
    )
    client = as_user(owner)
    page = _page(client, record)
    assert "Past its review date" in page and "(10 days ago)" in page
    assert set(_badges(page)) == {"stale"}
    home = client.get(reverse("web:space_home", kwargs={"slug": "payments"})).content.decode()
    row = home[home.index(">DEC-1</a>") :][:1500]
    assert _badges(row)[0] == "stale"
    listed = client.get(
        reverse("web:space_home", kwargs={"slug": "payments"}) + "?freshness=attention"
    )
    assert ">DEC-1</a>" in listed.content.decode()


def test_a_new_record_with_a_past_valid_until_is_suspect_and_says_why(as_user, owner, space):
    record = make_record(
        space=space, actor=owner, title="EU data in Frankfurt", valid_until=dt.date(2026, 1, 31)
    )
    page = _page(as_user(owner), record)
    assert set(_badges(page)) == {"suspect"}
    assert "Why this may be wrong" in page
    assert "It was valid until" in page and "31 Jan 2026" in page


def test_a_superseded_record_is_not_shown_fresh(as_user, owner, space):
    old = make_record(space=space, actor=owner, title="Cron retries", status="accepted")
    new = make_record(space=space, actor=owner, title="Queue retries", status="accepted")
    services.record_supersede(old=old, new=new, actor=owner)
    page = _page(as_user(owner), old)
    assert "fresh" not in _badges(page)
    assert set(_badges(page)) == {"stale"}


def test_the_review_queue_badge_matches_the_line_beside_it(as_user, owner_admin, space):
    """An unowned record in the admin's queue: its badge and its review line agree with the
    record page."""
    record = make_record(space=space, actor=owner_admin, title="Nobody's guardrail")
    client = as_user(owner_admin)
    queue = client.get(reverse("reminders:review_queue")).content.decode()
    item = queue[queue.index("Nobody&#x27;s guardrail") :][:2000]
    assert "Review was due today" not in item
    # Nobody has verified it: "Not yet verified", with its first review date, as on its page.
    assert f"Never verified; first review on {record.next_review_at:%-d %b %Y}" in item
    assert _badges(item)[0] == "unverified"
    # Now its review date passes; no sweep runs.
    Record.objects.filter(pk=record.pk).update(next_review_at=timezone.now() - dt.timedelta(1))
    queue = client.get(reverse("reminders:review_queue")).content.decode()
    item = queue[queue.index("Nobody&#x27;s guardrail") :][:2000]
    assert _badges(item)[0] == "stale" and "Review overdue by 1 day" in item


def test_health_pages_count_derived_states_and_word_due_the_same_way(
    as_user, owner, space, decision
):
    Record.objects.filter(pk=decision.pk).update(
        next_review_at=timezone.now() - dt.timedelta(days=10)
    )
    client = as_user(owner)
    org = client.get(reverse("reminders:health"))
    one = client.get(reverse("reminders:space_health", kwargs={"slug": "payments"}))
    wording = "Due: its review date is within 14 days."
    for response in (org, one):
        body = response.content.decode()
        assert wording in body
        assert "a few days" not in body
        stale = next(s for s in response.context["shares"] if s["state"] == "stale")
        assert stale["count"] == 1

"""Freshness is derived from a record's facts (dates, status, open reasons) whenever it is read.
The Python derivation and its SQL twin agree; the sweep's stored value is only a cache."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.records import policy, services
from apps.records.models import LiveFreshness, Record
from apps.records.selectors import record_list_visible
from apps.reminders import services as reminders
from tests.factories import make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied(space, owner):
    """Records in every combination the derivation distinguishes, as of now."""
    now = timezone.now()
    today = timezone.localdate()
    made = {}

    def add(name, *, facts=None, **fields):
        record = make_record(space=space, actor=owner, title=name, **fields)
        if facts:
            Record.objects.filter(pk=record.pk).update(**facts)
        made[name] = record

    add("fresh")
    add("verified", owner_user=owner)
    services.record_verify(record=made["verified"], actor=owner)
    add("due soon", facts={"next_review_at": now + dt.timedelta(days=3)})
    add("due at the window's edge", facts={"next_review_at": now + dt.timedelta(days=14)})
    add("past review", facts={"next_review_at": now - dt.timedelta(days=10)})
    add("valid until yesterday", valid_until=today - dt.timedelta(days=1))
    add("valid until today", valid_until=today)
    add("valid until tomorrow", valid_until=today + dt.timedelta(days=1))
    add("new with a past valid-until", valid_until=dt.date(2020, 1, 1))
    add("old", status="accepted")
    add("successor", status="accepted")
    services.record_supersede(old=made["old"], new=made["successor"], actor=owner)
    add("leans on successor")
    services.record_link(
        source=made["leans on successor"],
        target=made["successor"],
        type="depends_on",
        actor=owner,
    )
    services.record_update(
        record=made["successor"], actor=owner, expected_version=1, changes={"body": "Edited"}
    )
    return made


EXPECTED = {
    # Nobody has verified these: "Not yet verified" within their first interval, never fresh.
    "fresh": "unverified",
    "verified": "fresh",
    "due soon": "due",
    "due at the window's edge": "due",
    "past review": "stale",
    "valid until yesterday": "suspect",
    "valid until today": "unverified",
    "valid until tomorrow": "unverified",
    "new with a past valid-until": "suspect",
    "old": "stale",  # superseded: it no longer holds
    "successor": "unverified",
    "leans on successor": "suspect",
}


def _python_states(now):
    records = Record.objects.select_related("space").prefetch_related("suspect_reasons")
    states = {}
    for record in records:
        has_reasons = any(r.resolved_at is None for r in record.suspect_reasons.all())
        states[record.title] = policy.record_freshness(
            record, now=now, has_open_reasons=has_reasons
        )
    return states


def _sql_states(now):
    return dict(Record.objects.annotate(state=LiveFreshness(now)).values_list("title", "state"))


def test_every_reader_sees_the_derived_state_without_a_sweep(varied, owner):
    assert {r.title: r.freshness for r in record_list_visible(principal=owner)} == EXPECTED


@pytest.mark.parametrize("days_later", [0, 1, 5, 11, 15, 200])
def test_python_and_sql_derivations_agree(varied, days_later):
    now = timezone.now() + dt.timedelta(days=days_later)
    assert _python_states(now) == _sql_states(now)
    if days_later == 0:
        assert _python_states(now) == EXPECTED


def test_the_sweep_caches_the_same_states(varied):
    reminders.sweep(full=True)
    assert dict(Record.objects.values_list("title", "freshness")) == EXPECTED


def test_a_record_created_with_a_past_valid_until_is_suspect_at_once(space, owner):
    record = make_record(space=space, actor=owner, valid_until=dt.date(2020, 1, 1))
    assert record.freshness == "suspect"
    assert Record.objects.get(pk=record.pk).freshness == "suspect"

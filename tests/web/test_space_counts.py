"""The space page's summary strip (issue 12): counts from the maintained totals plus the records
that can need attention agree with the freshness derived over every record, and with what the
list's freshness filter shows, after each kind of write."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from apps.records import services
from apps.records.models import Record, SuspectReason
from apps.web import selectors
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _derived_over_every_record(space) -> dict[str, int]:
    """The counts as the page computed them before: a grouped scan of every active record."""
    counts = dict.fromkeys(Record.Freshness.values, 0)
    rows = (
        Record.objects.active()
        .filter(space=space)
        .with_freshness()
        .values_list("live_freshness")
        .order_by()
        .annotate(n=Count("*"))
    )
    for state, n in rows:
        counts[state] = n
    counts["total"] = sum(counts.values())
    return counts


def _listed(client, space, freshness) -> int:
    """How many records the list shows under the freshness filter (all fit on one page)."""
    url = reverse("web:space_home", kwargs={"slug": space.slug})
    body = client.get(url, {"freshness": freshness}).content.decode()
    return len(set(re.findall(r">((?:DEC|CON|INT|GRD)-\d+)</a>", body)))


def _assert_consistent(client, space):
    counts = selectors.space_counts(space)
    assert counts == _derived_over_every_record(space)
    for state in Record.Freshness.values:
        assert _listed(client, space, state) == counts[state], state
    return counts


@pytest.fixture
def mixed(space, owner):
    """One record in each freshness state, and an archived one."""
    now = timezone.now()

    def record(title, **kwargs):
        return make_record(
            space=space, actor=owner, kind="decision", title=title, owner_user=owner, **kwargs
        )

    records = {
        "unverified": record("Never verified"),
        "fresh": record("Verified"),
        "stale": record("Review passed"),
        "due": record("Review soon"),
        "superseded": record("Replaced"),
        "suspect": record("Doubted"),
        "expired": record("Valid until passed"),
        "archived": record("Archived"),
    }
    services.record_verify(record=records["fresh"], actor=owner)
    # Superseded by a link in the product; set directly here, the state is what counts.
    Record.objects.filter(pk=records["superseded"].pk).update(status=Record.Status.SUPERSEDED)
    Record.objects.filter(pk=records["stale"].pk).update(next_review_at=now - dt.timedelta(days=1))
    Record.objects.filter(pk=records["due"].pk).update(next_review_at=now + dt.timedelta(days=2))
    Record.objects.filter(pk=records["expired"].pk).update(
        valid_until=timezone.localdate(now) - dt.timedelta(days=1)
    )
    SuspectReason.objects.create(
        record=records["suspect"], cause=SuspectReason.Cause.CODE_CHANGED, message="changed"
    )
    services.record_archive(record=records["archived"], actor=owner)
    return records


def test_counts_agree_with_the_derived_states_and_the_list(as_user, owner, space, mixed):
    counts = _assert_consistent(as_user(owner), space)
    assert counts["total"] == 7
    assert counts[Record.Freshness.SUSPECT] == 2 and counts[Record.Freshness.STALE] == 2


def test_counts_follow_archive_unarchive_verify_and_edit(as_user, owner, space, mixed):
    client = as_user(owner)
    services.record_archive(record=mixed["stale"], actor=owner)
    assert _assert_consistent(client, space)["total"] == 6
    mixed["archived"].refresh_from_db()
    services.record_unarchive(record=mixed["archived"], actor=owner)
    assert _assert_consistent(client, space)["total"] == 7
    services.record_verify(record=mixed["suspect"], actor=owner)
    _assert_consistent(client, space)
    record = mixed["unverified"]
    record.refresh_from_db()
    services.record_update(
        record=record, actor=owner, expected_version=record.version, changes={"title": "Renamed"}
    )
    _assert_consistent(client, space)
    mixed["due"].delete()
    _assert_consistent(client, space)


def test_a_review_date_passing_moves_a_record_without_any_write(as_user, owner, space, mixed):
    """Time-dependent states are derived when read: no job has to run first."""
    client = as_user(owner)
    Record.objects.filter(pk=mixed["due"].pk).update(
        next_review_at=timezone.now() + dt.timedelta(seconds=1)
    )
    before = _assert_consistent(client, space)
    Record.objects.filter(pk=mixed["due"].pk).update(
        next_review_at=timezone.now() - dt.timedelta(seconds=1)
    )
    after = _assert_consistent(client, space)
    assert after[Record.Freshness.STALE] == before[Record.Freshness.STALE] + 1

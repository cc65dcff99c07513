"""The freshness policy: review intervals per kind, impact and reversibility; the states."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.records import policy, services
from apps.records.models import Record
from apps.reminders import services as reminders
from tests.factories import make_record

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kind", "reversibility", "impact", "days"),
    [
        ("decision", "one_way", "high", 60),
        ("decision", "one_way", "medium", 90),
        ("decision", "one_way", "low", 120),
        ("decision", "one_way", "", 90),  # impact not stated: treated as medium
        ("decision", "two_way", "high", 180),  # a two-way door is cheap to walk back
        ("decision", "", "high", 120),
        ("constraint", "", "", 90),
        ("intent", "", "", 120),
        ("guardrail", "", "", 60),
    ],
)
def test_default_intervals_follow_the_issue(kind, reversibility, impact, days):
    assert (
        policy.review_interval_days(kind=kind, reversibility=reversibility, impact=impact) == days
    )


def test_space_overrides_replace_only_the_keys_they_name():
    overrides = {"guardrail": 30, "decision.two_way": 365}
    assert policy.review_interval_days(kind="guardrail", overrides=overrides) == 30
    assert (
        policy.review_interval_days(kind="decision", reversibility="two_way", overrides=overrides)
        == 365
    )
    assert policy.review_interval_days(kind="constraint", overrides=overrides) == 90


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"guardrail": 0}, "guardrail: between 1 and 3650 days."),
        ({"guardrail": 4000}, "guardrail: between 1 and 3650 days."),
        ({"guardrail": "soon"}, "guardrail: a number of days is required."),
        ({"guardrail": True}, "guardrail: a number of days is required."),
        ({"guardrail": None}, "guardrail: a number of days is required."),
        ({"decision.sometimes": 10}, "Unknown policy key 'decision.sometimes'."),
    ],
)
def test_bad_overrides_are_refused_with_the_key_named(values, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        policy.clean_overrides(values)


def test_overrides_equal_to_the_default_are_not_stored():
    assert policy.clean_overrides({"guardrail": 60, "intent": "30"}) == {"intent": 30}


@pytest.mark.parametrize(
    ("review_in", "reasons", "state"),
    [
        (dt.timedelta(days=15), False, "fresh"),
        (dt.timedelta(days=14), False, "due"),  # the due window is inclusive
        (dt.timedelta(seconds=1), False, "due"),
        (dt.timedelta(0), False, "stale"),  # the review date itself is stale
        (-dt.timedelta(days=400), False, "stale"),
        (dt.timedelta(days=300), True, "suspect"),  # evidence beats every date
        (-dt.timedelta(days=3), True, "suspect"),
    ],
)
def test_freshness_states(review_in, reasons, state):
    assert (
        policy.freshness_for(
            next_review_at=NOW + review_in, has_open_reasons=reasons, now=NOW, due_window_days=14
        )
        == state
    )


@pytest.mark.parametrize(
    ("review_in", "reasons", "state"),
    [
        (dt.timedelta(days=15), False, "unverified"),  # instead of fresh, and only instead of it
        (dt.timedelta(days=14), False, "due"),
        (-dt.timedelta(days=1), False, "stale"),
        (dt.timedelta(days=300), True, "suspect"),
    ],
)
def test_a_never_verified_record_is_unverified_where_it_would_be_fresh(review_in, reasons, state):
    assert (
        policy.freshness_for(
            next_review_at=NOW + review_in,
            has_open_reasons=reasons,
            now=NOW,
            due_window_days=14,
            verified=False,
        )
        == state
    )


@pytest.mark.django_db
def test_the_sql_interval_agrees_with_python_for_every_class_of_record():
    overrides = {"decision.one_way.low": 200, "intent": 45}
    sql, params = policy.interval_days_sql(overrides, alias="r")
    combos = [
        (kind, rev, impact)
        for kind in Record.Kind.values
        for rev in ("", "one_way", "two_way")
        for impact in ("", "low", "medium", "high")
    ]
    with connection.cursor() as cursor:
        for kind, rev, impact in combos:
            cursor.execute(
                f"SELECT {sql} FROM (SELECT %s AS kind, %s AS reversibility, %s AS impact) r",
                [*params, kind, rev, impact],
            )
            expected = policy.review_interval_days(
                kind=kind, reversibility=rev, impact=impact, overrides=overrides
            )
            assert cursor.fetchone()[0] == expected, (kind, rev, impact)


@pytest.mark.django_db
def test_a_one_way_high_impact_decision_goes_stale_long_before_a_two_way_one(space, owner):
    with time_machine.travel(NOW, tick=False):
        one_way = make_record(
            space=space, actor=owner, owner_user=owner, reversibility="one_way", impact="high"
        )
        two_way = make_record(
            space=space, actor=owner, owner_user=owner, reversibility="two_way", impact="high"
        )
    assert one_way.next_review_at == NOW + dt.timedelta(days=60)
    assert two_way.next_review_at == NOW + dt.timedelta(days=180)

    states = {}
    for day in (45, 46, 60, 166, 180):
        with time_machine.travel(NOW + dt.timedelta(days=day), tick=False):
            reminders.sweep()
            states[day] = tuple(Record.objects.get(pk=r.pk).freshness for r in (one_way, two_way))
    # Never verified: "unverified" until the first review comes near, never "fresh".
    assert states == {
        45: ("unverified", "unverified"),
        46: ("due", "unverified"),
        60: ("stale", "unverified"),
        166: ("stale", "due"),
        180: ("stale", "stale"),
    }


@pytest.mark.django_db
def test_verifying_restarts_the_interval_from_the_moment_of_verification(space, owner):
    with time_machine.travel(NOW, tick=False):
        record = make_record(space=space, actor=owner, owner_user=owner, kind="constraint")
    later = NOW + dt.timedelta(days=100)
    with time_machine.travel(later, tick=False):
        reminders.sweep(full=True)
        assert Record.objects.get(pk=record.pk).freshness == "stale"
        services.record_verify(record=record, actor=owner)
    record = Record.objects.get(pk=record.pk)
    assert (record.freshness, record.last_verified_at, record.next_review_at) == (
        "fresh",
        later,
        later + dt.timedelta(days=90),
    )


@pytest.mark.django_db
def test_changing_impact_redates_from_the_last_check_not_from_now(space, owner, teammate):
    with time_machine.travel(NOW, tick=False):
        record = make_record(
            space=space, actor=owner, owner_user=owner, reversibility="one_way", impact="low"
        )
    with time_machine.travel(NOW + dt.timedelta(days=70), tick=False):
        # A teammate (not the owner: no verification) raises the impact: 120 -> 60 days.
        services.record_update(
            record=record, actor=teammate, expected_version=1, changes={"impact": "high"}
        )
    record = Record.objects.get(pk=record.pk)
    assert record.next_review_at == NOW + dt.timedelta(days=60)
    assert record.freshness == "stale"
    assert not record.verifications.exists()


@pytest.mark.django_db
def test_policy_change_redates_records_and_bad_values_change_nothing(space, owner, admin_user):
    with time_machine.travel(NOW, tick=False):
        record = make_record(space=space, actor=owner, kind="intent")
    with time_machine.travel(NOW + dt.timedelta(days=50), tick=False):
        with pytest.raises(InvalidInput) as refused:
            reminders.space_policy_update(
                space=space,
                actor=admin_user,
                intervals={"intent": 0},
                due_window_days=-1,
                escalation_days=30,
            )
        assert set(refused.value.details) == {"intervals", "due_window_days"}
        assert Record.objects.get(pk=record.pk).next_review_at == NOW + dt.timedelta(days=120)

        reminders.space_policy_update(
            space=space,
            actor=admin_user,
            intervals={"intent": 45},
            due_window_days=7,
            escalation_days=30,
        )
    record = Record.objects.get(pk=record.pk)
    assert record.next_review_at == NOW + dt.timedelta(days=45)
    assert record.freshness == "stale"
    assert timezone.is_aware(record.next_review_at)


@pytest.mark.django_db
def test_only_space_admins_change_the_policy(space, owner):
    from apps.core.errors import Forbidden

    with pytest.raises(Forbidden):
        reminders.space_policy_update(
            space=space, actor=owner, intervals={}, due_window_days=7, escalation_days=30
        )
    space.refresh_from_db()
    assert space.due_window_days == 14

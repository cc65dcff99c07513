"""Rules written twice, once in Python and once in SQL, must agree: a digest's order (Python)
and the review queue's pre-sort (SQL) rank the same records the same way, and a drift dry run
names exactly the records the real run marks. (The freshness twins: tests/records/
test_freshness.py.)"""

import datetime as dt

import pytest
from django.utils import timezone

from apps.records import evidence
from apps.records.models import Record, SuspectReason
from apps.reminders import selectors
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def test_the_sql_priority_equals_the_python_urgency_without_usage(space, owner):
    now = timezone.now()
    cases = [
        # (kind, impact, review date offset in days, open reasons' ages in days)
        ("decision", "high", -40, []),
        ("decision", "medium", -3, [10]),
        ("decision", "low", 30, [2, 7]),
        ("decision", "", -1, []),
        ("guardrail", "", -100, [1]),
        ("constraint", "", 5, []),
        ("intent", "", -12, [30]),
        ("decision", "high", 200, [0]),
    ]
    records = []
    for kind, impact, review, ages in cases:
        record = make_record(space=space, actor=owner, kind=kind, impact=impact)
        Record.objects.filter(pk=record.pk).update(next_review_at=now + dt.timedelta(days=review))
        for age in ages:
            SuspectReason.objects.create(
                record=record,
                cause=SuspectReason.Cause.LINKED_RECORD_CHANGED,
                message="A linked record changed",
                created_at=now - dt.timedelta(days=age, hours=1),
            )
        # An old reason someone resolved counts for neither.
        SuspectReason.objects.create(
            record=record,
            cause=SuspectReason.Cause.LINKED_RECORD_CHANGED,
            message="Resolved long ago",
            created_at=now - dt.timedelta(days=400),
            resolved_at=now - dt.timedelta(days=300),
        )
        records.append(record)

    in_sql = dict(
        Record.objects.filter(pk__in=[r.pk for r in records])
        .annotate(priority=selectors.sql_priority(now))
        .values_list("pk", "priority")
    )
    for record in Record.objects.filter(pk__in=[r.pk for r in records]):
        reasons = list(record.suspect_reasons.filter(resolved_at__isnull=True))
        expected = selectors.urgency(
            usage=0,
            weight=selectors.impact_weight(record),
            days=selectors.days_stale(record, reasons, now=now),
        )
        assert in_sql[record.pk] == expected, (record.kind, record.impact, record.next_review_at)
    # And the figures are the ones the rule says, checked by hand for two of them: a high-impact
    # decision 40 days past review: 3 x (1 + 40); a guardrail whose review passed 100 days ago
    # and whose reason is a day old: 3 x (1 + 100).
    assert in_sql[records[0].pk] == 3 * 41
    assert in_sql[records[4].pk] == 3 * 101


ANCHORS = {
    "payments": ["src/payments/**"],
    "python at the top": ["src/*.py"],
    "one file": ["docs/adr/0001-record.md"],
    "any sql": ["**/*.sql"],
    "a folder": ["infra/"],
    "readme": ["README.md"],
    "nothing here": ["vendor/**"],
}
CHANGED = [
    "src/payments/retry/policy.py",
    "src/app.py",
    "src/deep/nested.py",
    "db/migrations/0001.sql",
    "infra/terraform/main.tf",
    "docs/README.md",
    "docs/adr/0001-record.md",
]


def test_the_drift_dry_run_names_exactly_the_records_the_real_run_marks(space, owner):
    made = {
        name: make_record(space=space, actor=owner, title=name, anchors=anchors)
        for name, anchors in ANCHORS.items()
    }
    dry_run = {r.title for r in evidence.anchored_records(CHANGED)}
    assessed = {r.title for r in Record.objects.active().anchored_to(CHANGED)}
    marked, unmatched = evidence.code_changed(
        repository="acme/shop", commit="abc123", paths=CHANGED, now=timezone.now()
    )
    really = set(
        SuspectReason.objects.filter(cause=SuspectReason.Cause.CODE_CHANGED).values_list(
            "record__title", flat=True
        )
    )
    # Worked out by hand from the globs: `src/*.py` stops at one folder, `README.md` is only
    # the top-level file, `infra/` covers everything under it.
    expected = {"payments", "python at the top", "one file", "any sql", "a folder"}
    assert really == expected
    assert marked == len(expected)
    assert dry_run == really == assessed
    assert unmatched == ["docs/README.md", "src/deep/nested.py"]
    assert made["nothing here"].title not in really

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from apps.accounts import services as account_services
from apps.records import policy, services
from apps.records.models import Record, SuspectReason
from apps.reminders import services as reminders
from apps.reminders.models import DriftReport
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _fresh(record):
    return Record.objects.get(pk=record.pk)


def _open_reasons(record):
    return list(SuspectReason.objects.filter(record=record, resolved_at__isnull=True))


# --- 1. linked records ------------------------------------------------------------------------


def test_deprecating_a_record_marks_dependents_suspect_with_a_link_to_it(space, owner):
    base = make_record(space=space, actor=owner, kind="intent", title="Card payments only")
    dependent = make_record(space=space, actor=owner, title="Use one PSP")
    unrelated = make_record(space=space, actor=owner, title="Unrelated")
    services.record_link(source=dependent, target=base, type="implements", actor=owner)

    services.record_update(
        record=base, actor=owner, expected_version=base.version, changes={"status": "deprecated"}
    )

    [reason] = _open_reasons(dependent)
    assert reason.cause == SuspectReason.Cause.LINKED_RECORD_CHANGED
    assert reason.message == "INT-1 'Card payments only' was deprecated"
    assert reason.cause_record == base
    assert reason.cause_url == f"/s/payments/{base.key}/"
    assert _fresh(dependent).freshness == "suspect"
    assert _fresh(unrelated).freshness == "unverified"


def test_constraint_edit_marks_constrained_decision_suspect_until_verified(space, owner):
    constraint = make_record(space=space, actor=owner, kind="constraint", title="PCI scope")
    decision = make_record(space=space, actor=owner, title="Tokenise cards", owner_user=owner)
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    services.record_update(
        record=constraint, actor=owner, expected_version=1, changes={"body": "Stricter now"}
    )
    assert _fresh(decision).freshness == "suspect"

    services.record_verify(record=_fresh(decision), actor=owner)

    assert _open_reasons(decision) == []
    assert _fresh(decision).freshness == "fresh"


# --- 2. code under anchors --------------------------------------------------------------------


def test_drift_marks_anchored_records_suspect_and_lists_uncovered_paths(space, owner):
    billing = make_record(space=space, actor=owner, anchors=["services/billing/**"])
    docs = make_record(space=space, actor=owner, anchors=["docs/*.md"])

    report, created = reminders.drift_report(
        repository="acme/payments",
        commit="abc123def456789",
        changed_paths=["services/billing/capture.py", "./services/billing/retry.py", "Makefile"],
        source=DriftReport.Source.API,
    )

    assert created
    assert report.suspect_count == 1
    assert report.unmatched_paths == ["Makefile"]
    [reason] = _open_reasons(billing)
    assert reason.cause == SuspectReason.Cause.CODE_CHANGED
    assert reason.message == (
        "Code under its anchors changed in acme/payments@abc123def456: "
        "services/billing/capture.py, services/billing/retry.py"
    )
    assert reason.details["paths"] == ["services/billing/capture.py", "services/billing/retry.py"]
    assert _fresh(billing).freshness == "suspect"
    assert _fresh(docs).freshness == "unverified"


def test_the_same_commit_reported_twice_adds_no_second_reason(space, owner):
    record = make_record(space=space, actor=owner, anchors=["api/"])
    for _ in range(2):
        reminders.drift_report(
            repository="acme/api",
            commit="feedface",
            changed_paths=["api/urls.py"],
            source=DriftReport.Source.API,
        )
    assert len(_open_reasons(record)) == 1
    assert DriftReport.objects.count() == 1


def test_drift_with_bad_paths_is_refused_and_changes_nothing(space, owner):
    record = make_record(space=space, actor=owner, anchors=["api/"])
    from apps.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        reminders.drift_report(
            repository="acme/api",
            commit="feedface",
            changed_paths=["api/urls.py", 42],
            source=DriftReport.Source.API,
        )
    assert _open_reasons(record) == []
    assert not DriftReport.objects.exists()


# --- 3. valid_until ---------------------------------------------------------------------------


def test_sweep_marks_records_past_valid_until_suspect_once(space, owner):
    today = timezone.localdate()
    record = make_record(space=space, actor=owner, valid_until=today + dt.timedelta(days=3))
    reminders.sweep()
    assert _fresh(record).freshness == "unverified"

    with time_machine.travel(timezone.now() + dt.timedelta(days=4)):
        reminders.sweep()
        reminders.sweep()

    [reason] = _open_reasons(record)
    assert reason.cause == SuspectReason.Cause.VALID_UNTIL_PASSED
    assert str(today + dt.timedelta(days=3)) in reason.message
    assert _fresh(record).freshness == "suspect"


# --- 4. owner left / deactivated --------------------------------------------------------------


def test_owner_leaving_the_space_orphans_their_records(space, owner, admin_user):
    record = make_record(space=space, actor=owner, owner_user=owner)
    account_services.membership_remove(space=space, user=owner, actor=admin_user)

    record = _fresh(record)
    assert record.owner_user is None
    assert record.freshness == "suspect"
    [reason] = _open_reasons(record)
    assert reason.cause == SuspectReason.Cause.OWNER_LEFT
    assert reason.details["former_owner"] == "owner"
    assert "left the space" in reason.message
    # The history says who cleared the owner, and the version moved on.
    revision = record.revisions.order_by("-number").first()
    assert (revision.author, revision.snapshot["owner_user"], record.version) == (
        admin_user,
        None,
        2,
    )


def test_sweep_orphans_records_of_a_deactivated_owner(space, owner, teammate):
    mine = make_record(space=space, actor=owner, owner_user=owner)
    theirs = make_record(space=space, actor=owner, owner_user=teammate)
    owner.is_active = False
    owner.save()

    result = reminders.sweep()

    assert result["orphaned"] == 1
    assert _fresh(mine).owner_user is None
    assert "was deactivated" in _open_reasons(mine)[0].message
    assert _fresh(theirs).owner_user == teammate


# --- time-based states ------------------------------------------------------------------------


def test_sweep_moves_records_from_fresh_to_due_to_stale(space, owner):
    start = timezone.now()
    # A guardrail is reviewed every 60 days; "due" starts 14 days before.
    record = make_record(space=space, actor=owner, kind="guardrail", owner_user=owner, now=start)
    with time_machine.travel(start + dt.timedelta(days=45)):
        reminders.sweep()
        assert _fresh(record).freshness == "unverified"
    with time_machine.travel(start + dt.timedelta(days=47)):
        reminders.sweep()
        assert _fresh(record).freshness == "due"
    with time_machine.travel(start + dt.timedelta(days=61), tick=False):
        reminders.sweep()
        assert _fresh(record).freshness == "stale"
        services.record_verify(record=_fresh(record), actor=owner)
        record = _fresh(record)
        assert record.freshness == "fresh"
        assert record.next_review_at == timezone.now() + dt.timedelta(days=60)


def test_owner_edit_counts_as_verification_but_a_teammate_edit_does_not(space, owner, teammate):
    start = timezone.now()
    record = make_record(space=space, actor=owner, kind="guardrail", owner_user=owner, now=start)
    with time_machine.travel(start + dt.timedelta(days=61)):
        reminders.sweep()
        services.record_update(
            record=record, actor=teammate, expected_version=1, changes={"body": "typo fix"}
        )
        assert _fresh(record).freshness == "stale"
        services.record_update(
            record=record, actor=owner, expected_version=2, changes={"body": "re-checked"}
        )
        assert _fresh(record).freshness == "fresh"


def test_nightly_full_sweep_catches_what_the_hourly_one_does_not_look_at(space, owner):
    from apps.accounts.models import Membership

    long_ago = timezone.now() - dt.timedelta(days=300)
    old = make_record(space=space, actor=owner, owner_user=owner, kind="guardrail", now=long_ago)
    # A membership removed behind the services' back (e.g. in the database console).
    Membership.objects.filter(user=owner, space=space).delete()

    hourly = reminders.sweep()
    assert (hourly["orphaned"], hourly["changed"]) == (0, 0)
    assert _fresh(old).freshness == "unverified"

    nightly = reminders.sweep(full=True)
    assert nightly["orphaned"] == 1
    old = _fresh(old)
    assert (old.freshness, old.owner_user) == ("suspect", None)
    assert "left the space" in _open_reasons(old)[0].message


# --- 1. linked records: every way a record it leans on can change ------------------------------


def test_superseding_a_record_marks_what_depends_on_it_suspect(space, owner):
    old = make_record(space=space, actor=owner, title="Use RabbitMQ")
    new = make_record(space=space, actor=owner, title="Use Redis streams")
    dependent = make_record(space=space, actor=owner, kind="guardrail", title="Queue retries")
    services.record_link(source=dependent, target=old, type="depends_on", actor=owner)

    services.record_supersede(old=old, new=new, actor=owner)

    [reason] = _open_reasons(dependent)
    assert reason.message == f"{old.key} 'Use RabbitMQ' was superseded by {new.key}"
    assert reason.cause_record == old
    assert _fresh(dependent).freshness == "suspect"
    # The successor itself leans on nothing: it is not suspect (never verified yet).
    assert _fresh(new).freshness == "unverified"


def test_archiving_a_record_marks_what_implements_it_suspect(space, owner):
    intent = make_record(space=space, actor=owner, kind="intent", title="Same-day payouts")
    decision = make_record(space=space, actor=owner, title="Payout jobs every hour")
    services.record_link(source=decision, target=intent, type="implements", actor=owner)

    services.record_archive(record=intent, actor=owner)

    [reason] = _open_reasons(decision)
    assert reason.message == f"{intent.key} 'Same-day payouts' was archived"
    assert _fresh(decision).freshness == "suspect"


def test_only_leaning_links_carry_evidence(space, owner):
    """relates_to and conflicts_with are informational: editing the other end changes nothing,
    and a record that constrains another is not made suspect by the one it constrains."""
    base = make_record(space=space, actor=owner, title="Base")
    related = make_record(space=space, actor=owner, title="Related")
    constraint = make_record(space=space, actor=owner, kind="constraint", title="Constraint")
    services.record_link(source=related, target=base, type="relates_to", actor=owner)
    services.record_link(source=constraint, target=base, type="constrains", actor=owner)

    services.record_update(record=base, actor=owner, expected_version=1, changes={"body": "New"})

    assert _open_reasons(related) == [] and _fresh(related).freshness == "unverified"
    assert _open_reasons(constraint) == [] and _fresh(constraint).freshness == "unverified"


def test_a_tag_change_is_not_material_and_leaves_dependents_alone(space, owner):
    base = make_record(space=space, actor=owner, kind="constraint", title="PCI scope")
    dependent = make_record(space=space, actor=owner, title="Tokenise")
    services.record_link(source=dependent, target=base, type="depends_on", actor=owner)

    services.record_update(record=base, actor=owner, expected_version=1, changes={"tags": ["pci"]})

    assert _open_reasons(dependent) == []
    assert _fresh(dependent).freshness == "unverified"


def test_reasons_clear_when_the_suspect_record_is_edited(space, owner, teammate):
    base = make_record(space=space, actor=owner, kind="intent", title="Card payments only")
    dependent = make_record(space=space, actor=owner, title="One PSP", owner_user=owner)
    services.record_link(source=dependent, target=base, type="implements", actor=owner)
    services.record_update(record=base, actor=owner, expected_version=1, changes={"body": "v2"})
    assert _fresh(dependent).freshness == "suspect"

    # A teammate brings the dependent in line: its reason is resolved (not deleted).
    current = _fresh(dependent)
    services.record_update(
        record=current,
        actor=teammate,
        expected_version=current.version,
        changes={"body": "Updated for v2"},
    )

    assert _open_reasons(dependent) == []
    assert SuspectReason.objects.get(record=dependent).resolved_at is not None
    assert _fresh(dependent).freshness == "unverified"


# --- 2. drift, with space scoping ----------------------------------------------------------------


def test_a_token_reports_drift_only_into_spaces_its_user_edits(space, owner, other_space, outsider):
    mine = make_record(space=space, actor=owner, anchors=["api/**"])
    theirs = make_record(space=other_space, actor=outsider, anchors=["api/**"])
    from tests.factories import make_token

    token, _ = make_token(owner, scope="read_write")

    report, _ = reminders.drift_report(
        repository="acme/api",
        commit="1234abcd",
        changed_paths=["api/views.py"],
        source=DriftReport.Source.API,
        actor=token,
    )

    assert report.suspect_count == 1
    assert _fresh(mine).freshness == "suspect"
    assert _fresh(theirs).freshness == "unverified"


# --- 3. valid_until: editing the date clears the reason -----------------------------------------


def test_moving_valid_until_forward_clears_the_reason(space, owner):
    today = timezone.localdate()
    record = make_record(
        space=space, actor=owner, owner_user=owner, valid_until=today - dt.timedelta(days=1)
    )
    reminders.sweep()
    assert _fresh(record).freshness == "suspect"

    current = _fresh(record)
    services.record_update(
        record=current,
        actor=owner,
        expected_version=current.version,
        changes={"valid_until": today + dt.timedelta(days=90)},
    )
    reminders.sweep()

    assert _open_reasons(record) == []
    assert _fresh(record).freshness == "fresh"


# --- 4. orphans: a new owner resolves the owner-left reason -------------------------------------


def test_assigning_a_new_owner_resolves_only_the_owner_left_reason(
    space, owner, teammate, admin_user
):
    record = make_record(space=space, actor=owner, owner_user=owner, anchors=["svc/**"])
    reminders.drift_report(
        repository="acme/svc", commit="abc1234", changed_paths=["svc/a.py"], source="api"
    )
    account_services.membership_remove(space=space, user=owner, actor=admin_user)
    assert {r.cause for r in _open_reasons(record)} == {
        SuspectReason.Cause.CODE_CHANGED,
        SuspectReason.Cause.OWNER_LEFT,
    }

    current = _fresh(record)
    services.record_update(
        record=current,
        actor=admin_user,
        expected_version=current.version,
        changes={"owner_user": teammate},
    )

    record = _fresh(record)
    assert record.owner_user == teammate
    # The code still changed under it: suspect until the new owner has looked.
    assert [r.cause for r in _open_reasons(record)] == [SuspectReason.Cause.CODE_CHANGED]
    assert record.freshness == "suspect"


def test_an_owner_who_leaves_and_rejoins_does_not_get_their_records_back(space, owner, admin_user):
    record = make_record(space=space, actor=owner, owner_user=owner)
    account_services.membership_remove(space=space, user=owner, actor=admin_user)
    from tests.factories import MembershipFactory

    MembershipFactory(space=space, user=owner, role="editor")
    reminders.sweep(full=True)

    assert _fresh(record).owner_user is None
    assert _fresh(record).freshness == "suspect"


def test_the_hourly_and_nightly_sweeps_store_what_the_python_derivation_says(space, owner):
    """Twins: the sweep's SQL (`policy.freshness_sql` in `_changed_states`) and
    `policy.freshness_for` agree on every record, day after day, for the hourly sweep (only
    records near their review date) and the nightly full one."""
    start = timezone.now()
    today = timezone.localdate(start)
    made = [
        make_record(space=space, actor=owner, kind="guardrail", now=start),
        make_record(space=space, actor=owner, kind="decision", impact="high", now=start),
        make_record(space=space, actor=owner, kind="intent", now=start),
        make_record(space=space, actor=owner, valid_until=today + dt.timedelta(days=9), now=start),
        make_record(space=space, actor=owner, owner_user=owner, kind="constraint", now=start),
    ]
    services.record_verify(record=made[-1], actor=owner, now=start)
    ids = [r.pk for r in made]

    def python_states(now):
        records = Record.objects.filter(pk__in=ids).select_related("space")
        return {r.pk: policy.record_freshness(r, now=now) for r in records}

    seen = set()
    for day in range(80):
        now = start + dt.timedelta(days=day, hours=1)
        reminders.sweep(now=now, full=day % 30 == 0)
        stored = dict(Record.objects.filter(pk__in=ids).values_list("pk", "freshness"))
        assert stored == python_states(now), day
        seen |= set(stored.values())
    assert seen >= {"unverified", "fresh", "due", "stale", "suspect"}

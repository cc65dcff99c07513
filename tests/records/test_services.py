import datetime as dt

import pytest
import time_machine
from django.contrib.postgres.search import SearchQuery
from django.utils import timezone

from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound, VersionConflict
from apps.records import services
from apps.records.models import Link, Record, Revision, SuspectReason, Verification
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _state(record):
    """Everything a refused write must leave untouched."""
    record = Record.objects.get(pk=record.pk)
    return (
        record.title,
        record.body,
        record.status,
        record.version,
        Revision.objects.filter(record=record).count(),
        Link.objects.filter(source=record).count(),
    )


# --- create ---------------------------------------------------------------------------------


def test_create_allocates_per_kind_keys_and_writes_first_revision(space, owner):
    first = make_record(space=space, actor=owner, kind="decision", title="Use Postgres")
    second = make_record(space=space, actor=owner, kind="decision")
    constraint = make_record(space=space, actor=owner, kind="constraint")
    guardrail = make_record(space=space, actor=owner, kind="guardrail")
    intent = make_record(space=space, actor=owner, kind="intent")
    assert [first.key, second.key, constraint.key, guardrail.key, intent.key] == [
        "DEC-1",
        "DEC-2",
        "CON-1",
        "GRD-1",
        "INT-1",
    ]
    revision = first.revisions.get()
    assert (revision.number, revision.version, revision.action) == (1, 1, "create")
    assert revision.snapshot["title"] == "Use Postgres"
    assert revision.author == owner


def test_create_sets_review_date_from_space_policy(space, owner):
    now = timezone.now()
    one_way = make_record(space=space, actor=owner, reversibility="one_way", impact="high", now=now)
    two_way = make_record(space=space, actor=owner, reversibility="two_way", impact="low", now=now)
    space.review_policy = {"guardrail": 7}
    space.save()
    guardrail = make_record(space=space, actor=owner, kind="guardrail", now=now)
    assert one_way.next_review_at == now + dt.timedelta(days=60)
    assert two_way.next_review_at == now + dt.timedelta(days=180)
    assert guardrail.next_review_at == now + dt.timedelta(days=7)
    assert guardrail.freshness == "due"  # within the 14-day window


def test_created_record_is_found_by_full_text_on_title_body_tags_and_key(space, owner):
    record = make_record(
        space=space,
        actor=owner,
        title="Ledger storage",
        body="We use serialisable transactions.",
        tags=["Money"],
    )
    for words in ("ledger", "transaction", "money", record.key):
        query = SearchQuery(words, config="simple" if words == record.key else "english")
        assert list(Record.objects.filter(search_vector=query)) == [record], words


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"kind": "opinion"}, "kind"),
        ({"title": "   "}, "title"),
        ({"status": "maybe"}, "status"),
        ({"summary": "two\nlines"}, "summary"),
        ({"kind": "constraint", "reversibility": "one_way"}, "reversibility"),
        ({"tags": "not-a-list"}, "tags"),
        ({"anchors": ["x" * 301]}, "anchors"),
        ({"valid_until": "31/12/2026"}, "valid_until"),
        ({"impact": "enormous"}, "impact"),
    ],
)
def test_create_rejects_bad_fields_with_a_message_and_writes_nothing(
    space, owner, fields, bad_field
):
    args = {"kind": "decision", "title": "Fine title", **fields}
    with pytest.raises(InvalidInput) as caught:
        services.record_create(space=space, actor=owner, **args)
    assert bad_field in caught.value.details
    assert Record.objects.count() == 0
    assert Revision.objects.count() == 0


def test_viewer_cannot_create_and_outsider_does_not_learn_the_space_exists(space, viewer, outsider):
    with pytest.raises(Forbidden):
        services.record_create(space=space, kind="decision", title="x", actor=viewer)
    with pytest.raises(NotFound):
        services.record_create(space=space, kind="decision", title="x", actor=outsider)
    assert Record.objects.count() == 0


def test_owner_must_be_a_member_of_the_space(space, owner, outsider):
    with pytest.raises(InvalidInput) as caught:
        make_record(space=space, actor=owner, owner_user=outsider)
    assert "owner_user" in caught.value.details


def test_create_with_a_taken_number_is_a_conflict(space, owner):
    make_record(space=space, actor=owner, number=12)
    with pytest.raises(Conflict):
        make_record(space=space, actor=owner, number=12)
    assert make_record(space=space, actor=owner).key == "DEC-13"


# --- update ---------------------------------------------------------------------------------


def test_update_bumps_version_and_keeps_every_previous_content(space, owner):
    record = make_record(space=space, actor=owner, title="Old title", body="old body")
    updated = services.record_update(
        record=record,
        actor=owner,
        expected_version=1,
        changes={"title": "New title", "body": "new body"},
        message="clarify",
    )
    assert updated.version == 2
    revisions = list(record.revisions.order_by("number"))
    assert [(r.number, r.snapshot["title"], r.snapshot["body"]) for r in revisions] == [
        (1, "Old title", "old body"),
        (2, "New title", "new body"),
    ]
    assert revisions[1].message == "clarify"


def test_update_with_a_stale_version_is_refused_and_overwrites_nothing(space, owner, teammate):
    record = make_record(space=space, actor=owner, title="Original")
    services.record_update(
        record=record, actor=teammate, expected_version=1, changes={"title": "Teammate's"}
    )
    before = _state(record)
    with pytest.raises(VersionConflict) as caught:
        services.record_update(
            record=record, actor=owner, expected_version=1, changes={"title": "Mine"}
        )
    assert caught.value.current_version == 2
    assert _state(record) == before
    assert Record.objects.get(pk=record.pk).title == "Teammate's"


def test_update_refuses_unknown_fields_and_direct_superseded_status(space, owner):
    record = make_record(space=space, actor=owner)
    before = _state(record)
    with pytest.raises(InvalidInput):
        services.record_update(
            record=record, actor=owner, expected_version=1, changes={"version": 9}
        )
    with pytest.raises(InvalidInput):
        services.record_update(
            record=record, actor=owner, expected_version=1, changes={"status": "superseded"}
        )
    with pytest.raises(InvalidInput):
        services.record_update(
            record=record, actor=owner, expected_version=1, changes={"title": ""}
        )
    assert _state(record) == before


def test_tags_are_lower_cased_and_deduplicated(space, owner):
    record = make_record(space=space, actor=owner, tags=["Events", "events", " Ops "])
    assert record.tags == ["events", "ops"]


def test_update_without_changes_writes_no_revision(space, owner):
    record = make_record(space=space, actor=owner, title="Same")
    result = services.record_update(
        record=record, actor=owner, expected_version=1, changes={"title": "Same"}
    )
    assert result.version == 1
    assert record.revisions.count() == 1


def test_viewer_cannot_update(space, owner, viewer):
    record = make_record(space=space, actor=owner)
    with pytest.raises(Forbidden):
        services.record_update(
            record=record, actor=viewer, expected_version=1, changes={"title": "x"}
        )


def test_owner_editing_substance_counts_as_verification_but_a_teammate_edit_does_not(
    space, owner, teammate
):
    start = timezone.now() - dt.timedelta(days=100)
    record = make_record(space=space, actor=owner, owner_user=owner, kind="guardrail", now=start)
    assert services.refresh_freshness(record) == "stale"  # 60-day interval, 100 days ago
    services.record_update(
        record=record, actor=teammate, expected_version=1, changes={"body": "teammate"}
    )
    record.refresh_from_db()
    assert record.freshness == "stale"
    assert record.verifications.count() == 0
    services.record_update(
        record=record, actor=owner, expected_version=2, changes={"body": "owner"}
    )
    record.refresh_from_db()
    assert record.freshness == "fresh"
    assert record.verifications.get().outcome == "still_true"


# --- links and supersede ----------------------------------------------------------------------


def test_link_types_and_refusals(space, owner):
    a = make_record(space=space, actor=owner)
    b = make_record(space=space, actor=owner, kind="constraint")
    link = services.record_link(source=b, target=a, type="constrains", actor=owner)
    assert str(link) == f"{b.key} constrains {a.key}"
    with pytest.raises(Conflict):
        services.record_link(source=b, target=a, type="constrains", actor=owner)
    with pytest.raises(InvalidInput):
        services.record_link(source=a, target=a, type="relates_to", actor=owner)
    with pytest.raises(InvalidInput):
        services.record_link(source=a, target=b, type="likes", actor=owner)
    assert Link.objects.count() == 1
    assert b.revisions.filter(action="link").count() == 1


def test_link_to_a_record_the_actor_cannot_see_is_not_found(space, owner, other_space, outsider):
    mine = make_record(space=space, actor=owner)
    theirs = make_record(space=other_space, actor=outsider)
    with pytest.raises(NotFound):
        services.record_link(source=mine, target=theirs, type="relates_to", actor=owner)
    assert Link.objects.count() == 0


def test_supersede_marks_old_superseded_and_cycles_are_refused(space, owner):
    old = make_record(space=space, actor=owner, status="accepted")
    new = make_record(space=space, actor=owner, status="accepted")
    newest = make_record(space=space, actor=owner, status="accepted")
    services.record_supersede(old=old, new=new, actor=owner)
    old.refresh_from_db()
    assert old.status == "superseded"
    assert old.revisions.first().message == f"Superseded by {new.key}"
    services.record_supersede(old=new, new=newest, actor=owner)
    before = _state(old)
    with pytest.raises(Conflict):
        services.record_supersede(old=newest, new=old, actor=owner)
    assert _state(old) == before
    assert Record.objects.get(pk=newest.pk).status == "accepted"


def test_unlinking_the_supersede_gives_the_old_record_its_status_back(space, owner):
    old = make_record(space=space, actor=owner, status="proposed")
    new = make_record(space=space, actor=owner)
    link = services.record_supersede(old=old, new=new, actor=owner)
    services.record_unlink(link=link, actor=owner)
    old.refresh_from_db()
    assert old.status == "proposed"


# --- evidence ---------------------------------------------------------------------------------


def test_superseding_marks_dependents_suspect_with_a_reason(space, owner):
    base = make_record(space=space, actor=owner, title="Base")
    dependent = make_record(space=space, actor=owner, title="Depends")
    constrained = make_record(space=space, actor=owner, title="Constrained")
    unrelated = make_record(space=space, actor=owner, title="Unrelated")
    services.record_link(source=dependent, target=base, type="depends_on", actor=owner)
    services.record_link(source=base, target=constrained, type="constrains", actor=owner)
    services.record_link(source=unrelated, target=base, type="relates_to", actor=owner)
    successor = make_record(space=space, actor=owner, title="Successor")
    services.record_supersede(old=base, new=successor, actor=owner)
    states = dict(Record.objects.values_list("title", "freshness"))
    assert states["Depends"] == "suspect"
    assert states["Constrained"] == "suspect"
    assert states["Unrelated"] == "unverified"  # never verified, first review not due
    reason = SuspectReason.objects.get(record=dependent)
    assert reason.cause_record == base
    assert "superseded" in reason.message


def test_material_edit_of_a_dependency_makes_dependents_suspect_until_verified(space, owner):
    base = make_record(space=space, actor=owner)
    dependent = make_record(space=space, actor=owner, owner_user=owner)
    services.record_link(source=dependent, target=base, type="depends_on", actor=owner)
    services.record_update(record=base, actor=owner, expected_version=1, changes={"tags": ["x"]})
    # Tags are not material (never verified yet, so not fresh either).
    assert Record.objects.get(pk=dependent.pk).freshness == "unverified"
    services.record_update(
        record=base, actor=owner, expected_version=2, changes={"body": "changed"}
    )
    assert Record.objects.get(pk=dependent.pk).freshness == "suspect"
    services.record_verify(record=dependent, actor=owner)
    assert Record.objects.get(pk=dependent.pk).freshness == "fresh"
    assert not SuspectReason.objects.filter(record=dependent, resolved_at__isnull=True).exists()


# --- verify -----------------------------------------------------------------------------------


def test_owner_verification_resets_the_review_clock_and_records_linked_versions(space, owner):
    with time_machine.travel(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), tick=False):
        record = make_record(space=space, actor=owner, owner_user=owner, kind="constraint")
        other = make_record(space=space, actor=owner)
        services.record_link(source=record, target=other, type="relates_to", actor=owner)
    with time_machine.travel(dt.datetime(2026, 6, 1, tzinfo=dt.UTC), tick=False):
        services.refresh_freshness(record)
        assert Record.objects.get(pk=record.pk).freshness == "stale"
        verification = services.record_verify(record=record, actor=owner, commit="abc123")
        record.refresh_from_db()
        assert record.freshness == "fresh"
        assert record.next_review_at == dt.datetime(2026, 8, 30, tzinfo=dt.UTC)  # +90 days
        assert verification.linked_versions == {other.key: 1}
        assert verification.commit == "abc123"


def test_only_owner_or_admin_may_verify(space, owner, teammate, viewer, admin_user, outsider):
    record = make_record(space=space, actor=owner, owner_user=owner)
    with pytest.raises(Forbidden):
        services.record_verify(record=record, actor=teammate)
    with pytest.raises(Forbidden):
        services.record_verify(record=record, actor=viewer)
    with pytest.raises(NotFound):
        services.record_verify(record=record, actor=outsider)
    services.record_verify(record=record, actor=admin_user)
    services.record_verify(record=record, actor=owner, outcome="needs_update", note="API changed")
    assert list(record.verifications.values_list("outcome", flat=True)) == [
        "needs_update",
        "still_true",
    ]


def test_team_members_may_verify_team_owned_records(space, owner, teammate):
    from tests.factories import TeamFactory

    team = TeamFactory()
    team.members.add(teammate)
    record = make_record(space=space, actor=owner, owner_team=team)
    assert (
        services.record_verify(record=record, actor=teammate).outcome
        == Verification.Outcome.STILL_TRUE
    )


# --- archive and restore ----------------------------------------------------------------------


def test_archive_and_unarchive_keep_the_record_and_its_history(space, owner):
    record = make_record(space=space, actor=owner)
    services.record_archive(record=record, actor=owner)
    assert not Record.objects.active().filter(pk=record.pk).exists()
    services.record_unarchive(record=record, actor=owner)
    record.refresh_from_db()
    assert record.archived_at is None
    assert list(record.revisions.order_by("number").values_list("action", flat=True)) == [
        "create",
        "archive",
        "unarchive",
    ]


def test_restoring_a_revision_creates_a_new_revision_and_loses_nothing(space, owner):
    record = make_record(space=space, actor=owner, title="First", body="one")
    services.record_update(
        record=record, actor=owner, expected_version=1, changes={"title": "Second", "body": "two"}
    )
    first = record.revisions.get(number=1)
    restored = services.record_restore_revision(record=record, revision=first, actor=owner)
    assert (restored.title, restored.body, restored.version) == ("First", "one", 3)
    assert [r.snapshot["title"] for r in record.revisions.order_by("number")] == [
        "First",
        "Second",
        "First",
    ]
    assert record.revisions.first().message == "Restored revision 1"


def test_restore_with_a_stale_version_is_refused(space, owner):
    record = make_record(space=space, actor=owner, title="First")
    services.record_update(
        record=record, actor=owner, expected_version=1, changes={"title": "Second"}
    )
    with pytest.raises(VersionConflict):
        services.record_restore_revision(
            record=record, revision=record.revisions.get(number=1), actor=owner, expected_version=1
        )
    assert Record.objects.get(pk=record.pk).title == "Second"


def test_an_owners_read_only_token_cannot_verify_but_a_read_write_one_can(space, owner):
    from apps.accounts.models import ApiToken
    from tests.factories import make_token

    record = make_record(space=space, actor=owner, owner_user=owner)
    read, _ = make_token(owner, scope=ApiToken.Scope.READ)
    with pytest.raises(Forbidden):
        services.record_verify(record=record, actor=read)
    assert not record.verifications.exists()
    read_write, _ = make_token(owner, scope=ApiToken.Scope.READ_WRITE)
    services.record_verify(record=record, actor=read_write)
    assert record.verifications.count() == 1


def test_an_archived_record_cannot_be_edited_or_restored_until_unarchived(space, owner):
    record = make_record(space=space, actor=owner, title="Kept as it was")
    services.record_archive(record=record, actor=owner)
    before = _state(record)
    version = Record.objects.get(pk=record.pk).version
    with pytest.raises(Conflict, match="archived"):
        services.record_update(
            record=record, actor=owner, expected_version=version, changes={"title": "Changed"}
        )
    with pytest.raises(Conflict, match="archived"):
        services.record_restore_revision(
            record=record, revision=record.revisions.get(number=1), actor=owner
        )
    assert _state(record) == before
    services.record_unarchive(record=record, actor=owner)
    record.refresh_from_db()
    services.record_update(
        record=record, actor=owner, expected_version=record.version, changes={"title": "Changed"}
    )
    assert Record.objects.get(pk=record.pk).title == "Changed"


def test_a_superseded_record_cannot_be_verified_its_successor_can(space, owner):
    old = make_record(space=space, actor=owner, owner_user=owner, title="Old way")
    new = make_record(space=space, actor=owner, owner_user=owner, title="New way")
    services.record_supersede(old=old, new=new, actor=owner)
    with pytest.raises(InvalidInput, match="Verify its successor"):
        services.record_verify(record=old, actor=owner)
    assert not old.verifications.filter(outcome="still_true").exists()
    services.record_verify(record=new, actor=owner)

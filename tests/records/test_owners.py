"""The owner codec (apps.records.owners): each door's format read and written in one place, and
one rule for who may own a record, whichever door the owner came through."""

import pytest

from apps.core.errors import InvalidInput
from apps.records import owners, services
from tests.factories import TeamFactory, make_record

pytestmark = pytest.mark.django_db


def test_each_format_reads_back_what_it_writes(space, owner):
    team = TeamFactory(slug="platform")
    record = make_record(space=space, actor=owner, owner_user=owner)
    # Web form
    value = owners.form_value(user_id=owner.pk, team_id=None)
    assert value == f"u:{owner.pk}"
    assert owners.from_form(value) == owner
    assert owners.from_form(owners.form_value(user_id=None, team_id=team.pk)) == team
    assert owners.from_form("") is None
    # API
    assert owners.from_api({"owner_user": "owner", "owner_team": None}) == {
        "owner_user": owner,
        "owner_team": None,
    }
    assert owners.from_api({"owner_team": "platform"}) == {"owner_team": team}
    # Export front matter
    assert owners.export_value(record) == owner.email
    assert owners.from_export(owner.email.upper(), space=space) == (owner, None, "")
    assert owners.from_export("team:platform", space=space) == (None, team, "")
    # Re-import digests (stored)
    assert owners.digest_value(user_id=owner.pk, team_id=None) == f"user:{owner.pk}"
    assert owners.digest_value(user_id=None, team_id=team.pk) == f"team:{team.pk}"


@pytest.mark.parametrize("value", ["u:999999", "x:1", "u:abc", "u:", "t:1" * 20])
def test_a_form_value_not_in_the_list_is_refused(db, value):
    with pytest.raises(InvalidInput, match="Pick an owner from the list"):
        owners.from_form(value)


def test_unknown_api_owners_are_refused_with_the_field_named(db):
    with pytest.raises(InvalidInput) as exc:
        owners.from_api({"owner_user": "nobody"})
    assert exc.value.details == {"owner_user": ["No such user."]}
    with pytest.raises(InvalidInput) as exc:
        owners.from_api({"owner_team": "nobody"})
    assert exc.value.details == {"owner_team": ["No such team."]}


def test_outsiders_and_deactivated_users_cannot_become_owners(space, owner, teammate, outsider):
    assert owners.problem(teammate, space=space) == ""
    assert "not a member of Payments" in owners.problem(outsider, space=space)
    assert owners.from_export(outsider.email, space=space)[2].endswith("not a member of Payments")
    teammate.is_active = False
    teammate.save()
    assert "deactivated" in owners.problem(teammate, space=space)
    # One who already owns the record may stay while other fields change.
    assert owners.problem(teammate, space=space, current_owner_id=teammate.pk) == ""
    with pytest.raises(InvalidInput) as exc:
        make_record(space=space, actor=owner, owner_user=teammate)
    assert "deactivated" in exc.value.details["owner_user"][0]
    record = make_record(space=space, actor=owner)
    with pytest.raises(InvalidInput) as exc:
        services.record_update(
            record=record, actor=owner, expected_version=1, changes={"owner_user": outsider}
        )
    assert "not a member" in exc.value.details["owner_user"][0]

"""The group-to-role rules of apps.sso.services (what each SSO sign-in re-applies)."""

from __future__ import annotations

import pytest

from apps.accounts.models import Membership
from apps.sso.adapters import unique_username
from apps.sso.models import GroupRoleMapping, RoleGrant
from apps.sso.services import groups_from_claims, sso_roles_apply
from tests.factories import MembershipFactory, SpaceFactory, UserFactory


@pytest.fixture
def platform(db):
    space = SpaceFactory(name="Platform", slug="platform")
    GroupRoleMapping.objects.create(group="eng", space=space, role="editor")
    GroupRoleMapping.objects.create(group="eng-leads", space=space, role="admin")
    return space


def role(user, space) -> str | None:
    membership = Membership.objects.filter(user=user, space=space).first()
    return membership.role if membership else None


def test_the_highest_mapped_role_wins(platform):
    user = UserFactory()
    sso_roles_apply(user=user, groups=["eng", "eng-leads"])
    assert role(user, platform) == "admin"
    sso_roles_apply(user=user, groups=["eng"])
    assert role(user, platform) == "editor"


def test_env_mapping_applies_and_an_unknown_space_is_skipped(platform, settings):
    settings.SSO_GROUP_ROLES = [("readers", "platform", "viewer"), ("x", "no-such-space", "admin")]
    user = UserFactory()
    sso_roles_apply(user=user, groups=["readers", "x"])
    assert list(Membership.objects.filter(user=user).values_list("space__slug", "role")) == [
        ("platform", "viewer")
    ]


def test_sso_raises_a_hand_granted_role_and_gives_it_back_when_the_group_goes(platform):
    user = MembershipFactory(space=platform, role="viewer").user
    sso_roles_apply(user=user, groups=["eng"])
    assert role(user, platform) == "editor"
    sso_roles_apply(user=user, groups=[])
    assert role(user, platform) == "viewer"
    assert not RoleGrant.objects.exists()


def test_sso_never_lowers_or_removes_a_hand_granted_role(platform):
    user = MembershipFactory(space=platform, role="admin").user
    sso_roles_apply(user=user, groups=["eng"])
    assert role(user, platform) == "admin"
    sso_roles_apply(user=user, groups=[])
    assert role(user, platform) == "admin"


def test_a_role_an_admin_changed_after_sso_granted_it_is_left_alone(platform):
    user = UserFactory()
    sso_roles_apply(user=user, groups=["eng"])
    Membership.objects.filter(user=user).update(role="admin")  # an admin promoted them by hand
    sso_roles_apply(user=user, groups=[])
    assert role(user, platform) == "admin"


def test_leaving_the_group_removes_the_membership_sso_created(platform):
    user = UserFactory()
    sso_roles_apply(user=user, groups=["eng"])
    changes = sso_roles_apply(user=user, groups=["other"])
    assert changes.removed == ["platform"]
    assert role(user, platform) is None


def test_groups_claim_may_be_a_list_or_one_string(settings):
    settings.SSO_GROUPS_CLAIM = "roles"
    assert groups_from_claims({"roles": ["a", "b"]}) == ["a", "b"]
    assert groups_from_claims({"roles": "a"}) == ["a"]
    assert groups_from_claims({"groups": ["a"]}) == []
    assert groups_from_claims({"roles": {"not": "a list"}}) == []


def test_a_taken_username_gets_a_number(db):
    UserFactory(username="sam")
    UserFactory(username="sam-2")
    assert unique_username("sam") == "sam-3"
    assert unique_username("Sam Smith!") == "SamSmith"

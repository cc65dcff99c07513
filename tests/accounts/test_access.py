import datetime as dt

import pytest
from django.utils import timezone

from apps.accounts import access, services
from apps.accounts.models import ApiToken, Membership, Space
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from apps.records.models import Record
from tests.factories import MembershipFactory, make_record, make_token

pytestmark = pytest.mark.django_db


def test_visible_to_owner_teammate_and_outsider(space, owner, teammate, outsider, other_space):
    mine = make_record(space=space, actor=owner)
    theirs = make_record(space=other_space, actor=outsider)
    assert list(Record.objects.visible_to(owner)) == [mine]
    assert list(Record.objects.visible_to(teammate)) == [mine]
    assert list(Record.objects.visible_to(outsider)) == [theirs]


def test_anonymous_and_inactive_users_see_nothing(space, owner):
    from django.contrib.auth.models import AnonymousUser

    make_record(space=space, actor=owner)
    assert not Record.objects.visible_to(AnonymousUser()).exists()
    assert not Record.objects.visible_to(None).exists()
    owner.is_active = False
    owner.save()
    assert not Record.objects.visible_to(owner).exists()


def test_a_token_never_sees_more_than_its_user_and_respects_its_spaces(space, owner, other_space):
    make_record(space=space, actor=owner)
    # Scoped to a space the user is not a member of: sees nothing there.
    token, _ = make_token(owner, spaces=[other_space])
    assert not Record.objects.visible_to(token).exists()
    unscoped, _ = make_token(owner)
    assert Record.objects.visible_to(unscoped).count() == 1


def test_revoked_and_expired_tokens_see_nothing(space, owner):
    make_record(space=space, actor=owner)
    revoked, _ = make_token(owner, revoked_at=timezone.now())
    expired, _ = make_token(owner, expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not Record.objects.visible_to(revoked).exists()
    assert not Record.objects.visible_to(expired).exists()


def test_read_token_of_an_editor_cannot_edit(space, owner):
    read, _ = make_token(owner, scope=ApiToken.Scope.READ)
    write, _ = make_token(owner, scope=ApiToken.Scope.READ_WRITE)
    assert access.can_view(read, space) and not access.can_edit(read, space)
    assert access.can_edit(write, space)


def test_token_authenticate_accepts_only_the_active_plain_token(owner):
    token, plain = services.token_create(user=owner, name="ci")
    assert services.token_authenticate(plain) == token
    assert services.token_authenticate(plain + "x") is None
    assert services.token_authenticate("not-a-token") is None
    assert ApiToken.objects.get(pk=token.pk).token_hash != plain  # only the hash is stored
    services.token_revoke(token=token, actor=owner)
    assert services.token_authenticate(plain) is None


def test_token_cannot_be_scoped_to_a_space_the_user_cannot_see(owner, other_space):
    with pytest.raises(InvalidInput):
        services.token_create(user=owner, name="sneaky", spaces=[other_space])
    assert not ApiToken.objects.exists()


def test_space_creator_becomes_admin_and_members_are_managed_by_admins_only(owner, teammate):
    space = services.space_create(name="Billing", actor=owner)
    assert space.slug == "billing"
    assert access.can_admin(owner, space)
    services.membership_set(space=space, user=teammate, role="editor", actor=owner)
    with pytest.raises(Forbidden):
        services.membership_set(space=space, user=owner, role="viewer", actor=teammate)
    with pytest.raises(Conflict):
        services.membership_remove(space=space, user=owner, actor=owner)  # last admin
    with pytest.raises(Conflict):
        services.space_create(name="Billing", actor=teammate)
    assert Space.objects.filter(slug="billing").count() == 1


def test_outsider_cannot_learn_a_space_exists(space, outsider, owner):
    with pytest.raises(NotFound):
        services.membership_set(space=space, user=outsider, role="admin", actor=outsider)
    assert not Membership.objects.filter(space=space, user=outsider).exists()
    MembershipFactory(space=space, user=outsider, role="viewer")
    assert access.role_in(outsider, space) == "viewer"


def test_the_context_endpoints_space_query_agrees_with_the_orm_rule_for_every_principal(
    space, owner, outsider, other_space
):
    from django.contrib.auth.models import AnonymousUser

    from tests.factories import SpaceFactory, UserFactory

    third = SpaceFactory(name="Aardvark", slug="aardvark")  # sorts first by name
    MembershipFactory(space=third, user=owner, role=Membership.Role.VIEWER)
    MembershipFactory(space=other_space, user=owner, role=Membership.Role.VIEWER)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    lonely = UserFactory(username="lonely")
    gone = UserFactory(username="gone", is_active=False)
    MembershipFactory(space=space, user=gone)
    principals = {
        "member of three": owner,
        "member of one": outsider,
        "superuser": root,
        "no memberships": lonely,
        "inactive user": gone,
        "anonymous": AnonymousUser(),
        "unscoped token": make_token(owner)[0],
        "token for two spaces": make_token(owner, spaces=[space, third])[0],
        "token for a space its user left": make_token(outsider, spaces=[space])[0],
        "revoked token": make_token(owner, revoked_at=timezone.now())[0],
        "expired token": make_token(owner, expires_at=timezone.now() - dt.timedelta(days=1))[0],
        "token of an inactive user": make_token(gone)[0],
    }
    expected = {
        "member of three": ["aardvark", "elsewhere", "payments"],
        "member of one": ["elsewhere"],
        "superuser": ["aardvark", "elsewhere", "payments"],
        "unscoped token": ["aardvark", "elsewhere", "payments"],
        "token for two spaces": ["aardvark", "payments"],
    }
    for name, principal in principals.items():
        orm = list(
            Space.objects.visible_to(principal).order_by("name").values_list("slug", flat=True)
        )
        fast = [slug for _pk, slug, _name in access.visible_space_rows(principal)]
        assert fast == orm == expected.get(name, []), name


def test_the_roles_listed_for_a_principal_are_the_roles_role_in_decides(
    space, owner, viewer, outsider, other_space
):
    """One rule for roles: what /api/v1/me lists (access.roles_by_space) is, space by space,
    what every door enforces (access.role_in)."""
    from django.contrib.auth import get_user_model

    MembershipFactory(space=other_space, user=owner, role=Membership.Role.VIEWER)
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    MembershipFactory(space=space, user=root, role=Membership.Role.VIEWER)
    read, _ = make_token(owner, scope=ApiToken.Scope.READ)
    write_one, _ = make_token(owner, scope=ApiToken.Scope.READ_WRITE, spaces=[space])
    root_token, _ = make_token(root, scope=ApiToken.Scope.READ_WRITE)
    expected = {
        # Checked by hand: the owner edits `space` and views `other_space`; a read token is a
        # viewer everywhere; a token for one space has no role elsewhere; a signed-in
        # superuser is an admin of every space, but its token only has its memberships.
        owner: {space.pk: "editor", other_space.pk: "viewer"},
        read: {space.pk: "viewer", other_space.pk: "viewer"},
        write_one: {space.pk: "editor"},
        viewer: {space.pk: "viewer"},
        root: {space.pk: "admin", other_space.pk: "admin"},
        root_token: {space.pk: "viewer"},
    }
    for principal, roles in expected.items():
        assert access.roles_by_space(principal) == roles, principal
        for candidate in (space, other_space):
            assert access.role_in(principal, candidate) == roles.get(candidate.pk), (
                principal,
                candidate,
            )

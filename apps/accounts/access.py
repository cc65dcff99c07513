"""The one place that decides who may see and change what.

A principal is a User or an ApiToken. A token never sees more than its user: it sees the
intersection of its user's spaces and its own space list (empty list = all of the user's).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Exists, Q, QuerySet

from apps.accounts.models import ApiToken, Membership, Space, User

ROLE_RANK: dict[str, int] = {
    Membership.Role.VIEWER: 1,
    Membership.Role.EDITOR: 2,
    Membership.Role.ADMIN: 3,
}


def user_of(principal) -> User | None:
    if isinstance(principal, ApiToken):
        return principal.user
    if principal is None or not getattr(principal, "is_authenticated", False):
        return None
    return principal


def _acting_user(principal) -> User | None:
    """The principal's user, or None when the principal may see nothing at all (anonymous, an
    inactive user, a revoked or expired token)."""
    user = user_of(principal)
    if user is None or not user.is_active:
        return None
    if isinstance(principal, ApiToken) and not principal.is_active:
        return None
    return user


def space_ids_visible_to(principal) -> QuerySet | None:
    """A subquery of visible space ids, or None meaning "all spaces" (active superusers)."""
    user = _acting_user(principal)
    if user is None:
        return Space.objects.none().values("id")
    if isinstance(principal, ApiToken):
        # One subquery, no round trip first to ask whether the token has a space list.
        scoped = ApiToken.spaces.through.objects.filter(apitoken_id=principal.pk)
        return (
            Membership.objects.filter(user=user)
            .filter(Q(space_id__in=scoped.values("space_id")) | ~Exists(scoped))
            .values("space_id")
        )
    if user.is_superuser:
        return None
    return Membership.objects.filter(user=user).values("space_id")


def visible_space_rows(principal) -> list[tuple[int, str, str]]:
    """(id, slug, name) of the spaces `space_ids_visible_to` allows, ordered by name, for the
    context endpoint's hot path: the same rule in one hand-written statement, because building
    the ORM's nested subqueries cost ~2 ms a request, more than running them
    (tests/accounts/test_access.py checks both agree for every kind of principal)."""
    user = _acting_user(principal)
    if user is None:
        return []
    space, member = Space._meta.db_table, Membership._meta.db_table
    if isinstance(principal, ApiToken):
        scoped = ApiToken.spaces.through._meta.db_table
        sql = f"""
            SELECT s.id, s.slug, s.name FROM {space} s
            JOIN {member} m ON m.space_id = s.id AND m.user_id = %(user)s
            WHERE NOT EXISTS (SELECT 1 FROM {scoped} t WHERE t.apitoken_id = %(token)s)
               OR s.id IN (SELECT t.space_id FROM {scoped} t WHERE t.apitoken_id = %(token)s)
            ORDER BY s.name, s.id"""  # noqa: S608 - table names only
    elif user.is_superuser:
        sql = f"SELECT s.id, s.slug, s.name FROM {space} s ORDER BY s.name, s.id"  # noqa: S608
    else:
        sql = f"""
            SELECT s.id, s.slug, s.name FROM {space} s
            JOIN {member} m ON m.space_id = s.id AND m.user_id = %(user)s
            ORDER BY s.name, s.id"""  # noqa: S608 - table names only
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user": user.pk, "token": principal.pk})
        return cursor.fetchall()


def roles_by_space(principal) -> dict[int, str]:
    """{space id: effective role} for every space the principal has a role in, as `role_in`
    decides each (a read-only token is a viewer; a signed-in superuser is an admin of every
    space). Two queries, whatever the number of spaces."""
    user = _acting_user(principal)
    if user is None:
        return {}
    if user.is_superuser and not isinstance(principal, ApiToken):
        return dict.fromkeys(Space.objects.values_list("id", flat=True), Membership.Role.ADMIN)
    roles = dict(
        Membership.objects.filter(
            user=user, space__in=Space.objects.visible_to(principal)
        ).values_list("space_id", "role")
    )
    if isinstance(principal, ApiToken) and not principal.can_write:
        return dict.fromkeys(roles, Membership.Role.VIEWER)
    return roles


def can_view_spaces(principal, space_ids) -> bool:
    """Whether the principal may see every one of `space_ids` (one that no longer exists is
    seen by no one): the rule for reading back a stored context bundle."""
    visible = {pk for pk, _, _ in visible_space_rows(principal)}
    return set(space_ids) <= visible


def role_in(principal, space: Space) -> str | None:
    """The principal's effective role in a space, or None when it cannot see the space."""
    user = _acting_user(principal)
    if user is None:
        return None
    if isinstance(principal, ApiToken):
        if not Space.objects.visible_to(principal).filter(id=space.id).exists():
            return None
    elif user.is_superuser:
        return Membership.Role.ADMIN
    role = Membership.objects.filter(user=user, space=space).values_list("role", flat=True).first()
    if role and isinstance(principal, ApiToken) and not principal.can_write:
        return Membership.Role.VIEWER
    return role


def can_view(principal, space: Space) -> bool:
    return role_in(principal, space) is not None


def at_least(role: str | None, minimum: str) -> bool:
    """Whether `role` (None: no access) gives at least what `minimum` gives."""
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK.get(minimum, 0)


def can_edit(principal, space: Space) -> bool:
    return at_least(role_in(principal, space), Membership.Role.EDITOR)


def can_admin(principal, space: Space) -> bool:
    role = role_in(principal, space)
    return role == Membership.Role.ADMIN


def visible_record_ids(principal, record_ids) -> set[int]:
    """Which of `record_ids` the principal may see: the rule for related records (links,
    successors, the records evidence names) in every door. One query, none for an empty set."""
    from apps.records.models import Record  # records import this module

    ids = {pk for pk in record_ids if pk is not None}
    if not ids:
        return set()
    return set(Record.objects.visible_to(principal).filter(pk__in=ids).values_list("pk", flat=True))


def can_verify(actor, record) -> bool:
    """Whether `actor` may verify `record` ("still true"): its owner (or a member of the owning
    team) who can still see the space, or a space admin; never a read-only token."""
    user = user_of(actor)
    if user is None or not can_view(actor, record.space):
        return False
    if not getattr(actor, "can_write", True):
        return False  # a read-only token changes nothing, verifications included
    if can_admin(actor, record.space):
        return True
    if not can_edit(actor, record.space) and record.owner_user_id != user.pk:
        return False
    if record.owner_user_id == user.pk:
        return True
    return (
        record.owner_team_id is not None and record.owner_team.members.filter(pk=user.pk).exists()
    )

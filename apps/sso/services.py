"""SSO writes: space roles from the provider's groups claim, re-applied at every SSO sign-in.

Rules (docs/sso.md, "Group mapping"):
- each mapped group gives a role in a space; a user in several mapped groups gets the highest;
- SSO never lowers a role an administrator granted by hand: it only adds memberships or raises
  roles, and remembers what it did in a RoleGrant;
- when the user is no longer in the groups, SSO takes back only what it gave: it removes the
  membership it created, or puts a raised role back to what it was;
- if an administrator changed that membership since, it counts as granted by hand and SSO
  leaves it alone from then on.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, User
from apps.sso.models import GroupRoleMapping, RoleGrant

logger = logging.getLogger(__name__)


@dataclass
class RoleChanges:
    added: list[str] = field(default_factory=list)  # "platform:editor"
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def groups_from_claims(claims: dict) -> list[str]:
    """The groups in the configured claim: a list of strings, or one string."""
    value = claims.get(settings.SSO_GROUPS_CLAIM)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


def _higher(a: str, b: str) -> str:
    return a if access.at_least(a, b) else b


def desired_roles(groups: list[str]) -> dict[int, tuple[str, list[str]]]:
    """{space id: (role, the groups that give it)} from the admin's mappings and SSO_GROUP_ROLES."""
    wanted: dict[int, tuple[str, list[str]]] = {}

    def add(space_id: int, role: str, group: str) -> None:
        current, via = wanted.get(space_id, ("", []))
        wanted[space_id] = (_higher(role, current) if current else role, [*via, group])

    if not groups:
        return wanted
    for mapping in GroupRoleMapping.objects.filter(group__in=groups).only(
        "group", "space_id", "role"
    ):
        add(mapping.space_id, mapping.role, mapping.group)
    env_rules = [rule for rule in settings.SSO_GROUP_ROLES if rule[0] in groups]
    if env_rules:
        spaces = dict(
            Space.objects.filter(slug__in={slug for _, slug, _ in env_rules}).values_list(
                "slug", "id"
            )
        )
        for group, slug, role in env_rules:
            if slug not in spaces:
                logger.warning("SSO_GROUP_ROLES names a space %r that does not exist", slug)
                continue
            add(spaces[slug], role, group)
    return wanted


@transaction.atomic
def sso_roles_apply(*, user: User, groups: list[str]) -> RoleChanges:
    """Bring the user's SSO-granted space roles in line with their groups (see module doc)."""
    now = timezone.now()
    changes = RoleChanges()
    wanted = desired_roles(groups)
    memberships = {m.space_id: m for m in Membership.objects.select_for_update().filter(user=user)}
    grants = {g.space_id: g for g in RoleGrant.objects.select_for_update().filter(user=user)}
    slugs = dict(Space.objects.filter(id__in=set(wanted) | set(grants)).values_list("id", "slug"))

    for space_id, grant in list(grants.items()):
        membership = memberships.get(space_id)
        if membership is None or membership.role != grant.role:
            # Removed or changed by an administrator since: theirs now, not SSO's.
            grant.delete()
            del grants[space_id]
    for space_id, (role, via) in wanted.items():
        change = _give(
            user=user,
            space_id=space_id,
            role=role,
            via=via,
            membership=memberships.get(space_id),
            grant=grants.get(space_id),
            now=now,
        )
        if change == "added":
            changes.added.append(f"{slugs[space_id]}:{role}")
        elif change:
            changes.changed.append(f"{slugs[space_id]}:{change}")
    for space_id, grant in grants.items():
        if space_id not in wanted:
            role = _take_back(user=user, membership=memberships[space_id], grant=grant, now=now)
            if role:
                changes.changed.append(f"{slugs[space_id]}:{role}")
            else:
                changes.removed.append(slugs[space_id])

    if changes:
        logger.info(
            "SSO roles for %s: added %s, changed %s, removed %s",
            user.username,
            changes.added,
            changes.changed,
            changes.removed,
        )
    return changes


def _give(
    *,
    user: User,
    space_id: int,
    role: str,
    via: list[str],
    membership: Membership | None,
    grant: RoleGrant | None,
    now: dt.datetime,
) -> str:
    """The groups give `role` in the space: add the membership, or raise its role (never lower a
    hand-granted one), and keep the RoleGrant in step. Returns "added", the role it was changed
    to, or "" when it stays as it was."""
    if membership is None:
        Membership.objects.create(user=user, space_id=space_id, role=role)
        RoleGrant.objects.create(
            user=user, space_id=space_id, role=role, groups=via, updated_at=now
        )
        return "added"
    base = grant.previous_role if grant else membership.role
    target = _higher(role, base) if base else role
    changed = target != membership.role
    if changed:
        membership.role = target
        membership.save(update_fields=["role"])
    if grant is None and target != base:
        RoleGrant.objects.create(
            user=user,
            space_id=space_id,
            role=target,
            previous_role=base,
            groups=via,
            updated_at=now,
        )
    elif grant is not None and base and target == base:
        grant.delete()  # back to the hand-granted role: nothing of SSO's left here
    elif grant is not None:
        grant.role, grant.groups, grant.updated_at = target, via, now
        grant.save(update_fields=["role", "groups", "updated_at"])
    return target if changed else ""


def _take_back(*, user: User, membership: Membership, grant: RoleGrant, now: dt.datetime) -> str:
    """The groups no longer give a role in the space: undo what SSO did there. Returns the role
    put back, or "" when the membership SSO created was removed."""
    from apps.records import evidence

    previous = grant.previous_role
    if previous:
        membership.role = previous
        membership.save(update_fields=["role"])
    else:
        membership.delete()
        # As when an admin removes a member: their records here go back to the space admins.
        evidence.orphan_owned_by(
            user=user,
            space=membership.space,
            now=now,
            message=f"Its owner {user.username} left the space (no longer in its SSO group)",
        )
    grant.delete()
    return previous

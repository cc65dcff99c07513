"""Reads for digests, escalations and the review queue: whose records need a look, and which."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, Value
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.records.models import RecordQuerySet, SuspectReason
from apps.reminders.selectors.ranking import (
    DigestGroups,
    SpaceGroup,
    attention_qs,
    listable,
    ranked,
    total_of,
)

# How many records one email or page lists; the rest are counted ("and 12 more").
DIGEST_LIMIT = 25
ESCALATION_LIMIT = 40
QUEUE_LIMIT = 100


def _owned_by(user: User) -> Q:
    """Records the user owns, and records owned by a team they are in (team ids read first, so
    the two owner indexes serve the query instead of a scan)."""
    team_ids = list(user.teams.values_list("id", flat=True))
    if not team_ids:
        return Q(owner_user=user)
    return Q(owner_user=user) | Q(owner_team_id__in=team_ids)


def digest_items(
    *,
    user: User,
    now: dt.datetime | None = None,
    limit: int = DIGEST_LIMIT,
    with_proposals: bool = True,
) -> list[SpaceGroup]:
    """The owner's due, stale and suspect records (their own and their teams'), in spaces they
    are a member of, grouped by space, most urgent first."""
    now = now or timezone.now()
    member_of = Membership.objects.filter(user=user).values("space_id")
    records = attention_qs(now).filter(_owned_by(user), space_id__in=member_of)
    groups = ranked(records, now=now, limit=limit, viewer=user)
    if not with_proposals:
        return groups
    from apps.agents.selectors import proposals_to_review

    groups = DigestGroups(groups)
    groups.proposals = proposals_to_review(user=user, limit=limit, primary=True)
    return groups


def _escalation_qs(now: dt.datetime) -> RecordQuerySet:
    """Records that need review and nobody owns, or that have been stale or suspect for longer
    than their space's escalation period."""
    cutoff = ExpressionWrapper(
        Value(now) - F("space__escalation_days") * Value(dt.timedelta(days=1)),
        output_field=DateTimeField(),
    )
    old_reason = SuspectReason.objects.filter(
        record=OuterRef("pk"), resolved_at__isnull=True, created_at__lte=OuterRef("escalate_at")
    )
    return (
        attention_qs(now)
        .annotate(escalate_at=cutoff)
        .filter(
            Q(owner_user__isnull=True, owner_team__isnull=True)
            | Q(next_review_at__lte=F("escalate_at"))
            | Exists(old_reason)
        )
    )


def escalation_items(
    *, user: User, now: dt.datetime | None = None, limit: int = ESCALATION_LIMIT
) -> list[SpaceGroup]:
    """For a space admin: records stale or suspect for longer than the space's escalation
    period, and orphaned records, in the spaces they administer."""
    now = now or timezone.now()
    admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("space_id")
    return ranked(
        _escalation_qs(now).filter(space_id__in=admin_of), now=now, limit=limit, viewer=user
    )


def users_with_digest_items(*, frequency: str, now: dt.datetime | None = None) -> list[int]:
    """Ids of active users with that digest frequency who own (themselves or through a team)
    something needing review in a space they are a member of.

    Set-based: the distinct (owner, space) pairs of the records needing review (a hash
    aggregate over one scan, at most users x spaces rows), then memberships and users."""
    attention = attention_qs(now).order_by()
    pairs = set(
        attention.filter(owner_user__isnull=False)
        .values_list("owner_user_id", "space_id")
        .distinct()
    )
    pairs |= set(
        attention.filter(owner_team__isnull=False)
        .exclude(owner_team__members=None)
        .values_list("owner_team__members", "space_id")
        .distinct()
    )
    from apps.agents.selectors import users_with_pending_proposals

    reviewers = set(users_with_pending_proposals())  # agents' proposals to review
    if not pairs and not reviewers:
        return []
    user_ids = {user_id for user_id, _ in pairs}
    members = set(
        Membership.objects.filter(user_id__in=user_ids).values_list("user_id", "space_id")
    )
    owners = {user_id for user_id, space_id in pairs if (user_id, space_id) in members}
    owners |= reviewers
    return sorted(
        User.objects.filter(pk__in=owners, is_active=True, digest_frequency=frequency).values_list(
            "id", flat=True
        )
    )


# Deliveries that reached (or will reach) the inbox: empty and given-up rows sent nothing.
_COUNTS_AS_SENT = ("pending", "sending", "sent", "failed")


def without_recent_digest(*, user_ids: list[int], since: dt.datetime) -> list[int]:
    """`user_ids` minus those who got (or are about to get) a digest since `since`, whatever
    its frequency then: switching daily to weekly right after today's daily, or a week rolling
    over the day after a weekly one, must not send another one now (one query)."""
    if not user_ids:
        return []
    from apps.reminders.models import Delivery

    recent = set(
        Delivery.objects.filter(
            user_id__in=user_ids,
            kind=Delivery.Kind.DIGEST,
            status__in=_COUNTS_AS_SENT,
            created_at__gte=since,
        ).values_list("user_id", flat=True)
    )
    return [pk for pk in user_ids if pk not in recent]


def admins_with_escalations(*, now: dt.datetime | None = None) -> list[int]:
    """Active space admins (with digests not off) of spaces that have something to escalate
    (one query)."""
    now = now or timezone.now()
    escalated = _escalation_qs(now).filter(space_id=OuterRef("space_id"))
    return list(
        Membership.objects.filter(role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(user__digest_frequency=User.DigestFrequency.OFF)
        .filter(Exists(escalated))
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )


def _assignees(space_ids) -> dict[int, list[User]]:
    """Active members of each space, the people a record there can be handed to."""
    by_space: dict[int, list[User]] = defaultdict(list)
    memberships = (
        Membership.objects.filter(space_id__in=space_ids, user__is_active=True)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    )
    for membership in memberships:
        by_space[membership.space_id].append(membership.user)
    return by_space


def review_queue(*, user: User, now: dt.datetime | None = None) -> dict:
    """What `user` should verify next, and (for space admins) the records nobody owns, which
    they should hand to someone."""
    now = now or timezone.now()
    mine = digest_items(user=user, now=now, limit=QUEUE_LIMIT, with_proposals=False)
    admin_of = list(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list(
            "space_id", flat=True
        )
    )
    orphans: list[SpaceGroup] = []
    if admin_of:
        unowned = listable(now).filter(
            space_id__in=admin_of, owner_user__isnull=True, owner_team__isnull=True
        )
        orphans = ranked(unowned, now=now, limit=QUEUE_LIMIT, viewer=user)
        people = _assignees([g.space.pk for g in orphans])
        for group in orphans:
            group.assignees = people.get(group.space.pk, [])
    return {
        "mine": mine,
        "orphans": orphans,
        "count": total_of(mine),
        "orphan_count": total_of(orphans),
        "proposals": _proposals_for(user),
    }


def _proposals_for(user: User) -> list:
    from apps.agents.selectors import proposals_to_review

    return proposals_to_review(user=user, limit=QUEUE_LIMIT)

"""Typed links between records, and superseding: a `supersedes` link marks its target
superseded (acyclic), removing the last one gives the target its old status back, and a
successor can be created and linked in one step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.core.text import strip_invisible
from apps.records import evidence
from apps.records.models import Link, Record, Revision
from apps.records.revisions import write_revision
from apps.records.services.common import (
    actor_user,
    bump_version,
    locked,
    refresh_freshness,
    require_edit,
    require_view,
)
from apps.records.services.records import record_create


def _set_status_locked(
    current: Record,
    *,
    status: str,
    actor,
    message: str,
    now: dt.datetime,
    related: Record | None = None,
) -> None:
    current.status = status
    bump_version(current, actor=actor, now=now)
    current.save()
    refresh_freshness(current, now=now)
    write_revision(
        current, action=Revision.Action.STATUS, actor=actor, message=message, related=related
    )


def _supersede_path_exists(start: Record, goal: Record) -> bool:
    """True when `start` already (transitively) supersedes `goal`."""
    table = Link._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE chain(id) AS (
                SELECT target_id FROM {table} WHERE source_id = %s AND type = 'supersedes'
                UNION
                SELECT l.target_id FROM {table} l JOIN chain c ON l.source_id = c.id
                WHERE l.type = 'supersedes'
            )
            SELECT EXISTS (SELECT 1 FROM chain WHERE id = %s)
            """,  # noqa: S608 - table name is ours
            [start.pk, goal.pk],
        )
        return bool(cursor.fetchone()[0])


@transaction.atomic
def record_link(
    *,
    source: Record,
    target: Record,
    type: str,
    actor,
    note: str = "",
    now: dt.datetime | None = None,
) -> Link:
    """Link two records. `supersedes` also marks the target superseded."""
    require_view(actor, source)
    require_view(actor, target)
    require_edit(actor, source.space)
    _check_link(source, target, type=type, note=note)
    source, target = _lock_both(source, target)
    if Link.objects.filter(source=source, target=target, type=type).exists():
        raise Conflict(f"{source.key} already {Link.Type(type).label} {target.key}.")
    if type == Link.Type.SUPERSEDES:
        _check_supersede(source, target)
    now = now or timezone.now()
    link = Link.objects.create(
        source=source,
        target=target,
        type=type,
        note=strip_invisible(note).strip(),
        created_at=now,
        created_by=actor_user(actor),
    )
    write_revision(
        source,
        action=Revision.Action.LINK,
        actor=actor,
        message=f"Linked: {Link.Type(type).label} {target.key}",
        related=target,
    )
    if type == Link.Type.SUPERSEDES and target.status != Record.Status.SUPERSEDED:
        _set_status_locked(
            target,
            status=Record.Status.SUPERSEDED,
            actor=actor,
            message=f"Superseded by {source.key}",
            now=now,
            related=source,
        )
        evidence.linked_record_changed(target, why="was superseded", by=source, now=now)
    return link


def _check_link(source: Record, target: Record, *, type: str, note: str) -> None:
    if type not in Link.Type.values:
        raise InvalidInput(
            f"Unknown link type {type!r}; use one of {', '.join(Link.Type.values)}.",
            details={"type": [f"{type!r} is not a valid link type."]},
        )
    if not isinstance(note, str) or len(note) > 300:
        raise InvalidInput("The note is at most 300 characters.", details={"note": ["Too long."]})
    if source.pk == target.pk:
        raise InvalidInput("A record cannot link to itself.", details={"target": ["Same record."]})


def _lock_both(source: Record, target: Record) -> tuple[Record, Record]:
    """Both ends re-read under a row lock, in a fixed order so concurrent link/supersede calls
    cannot deadlock."""
    rows = {
        r.pk: r
        for r in Record.objects.select_for_update()
        .filter(pk__in=[source.pk, target.pk])
        .order_by("pk")
    }
    return rows[source.pk], rows[target.pk]


def _check_supersede(source: Record, target: Record) -> None:
    """A supersedes chain has no cycles, and an archived record supersedes nothing live."""
    if _supersede_path_exists(target, source):
        raise Conflict(
            f"{target.key} already supersedes {source.key} (directly or through other records); "
            "superseding it back would make a cycle."
        )
    if target.archived_at is None and source.archived_at is not None:
        raise InvalidInput("An archived record cannot supersede another; unarchive it first.")


@transaction.atomic
def record_unlink(*, link: Link, actor, now: dt.datetime | None = None) -> None:
    """Remove a link. Removing the last `supersedes` link gives the target back its old status."""
    source, target = link.source, link.target
    require_view(actor, source)
    require_edit(actor, source.space)
    now = now or timezone.now()
    link_type = link.type
    link.delete()
    write_revision(
        source,
        action=Revision.Action.UNLINK,
        actor=actor,
        message=f"Unlinked: {Link.Type(link_type).label} {target.key}",
        related=target,
    )
    if link_type == Link.Type.SUPERSEDES:
        still_superseded = Link.objects.filter(target=target, type=Link.Type.SUPERSEDES).exists()
        current = locked(target)
        if not still_superseded and current.status == Record.Status.SUPERSEDED:
            previous = (
                Revision.objects.filter(record=current)
                .exclude(snapshot__status=Record.Status.SUPERSEDED)
                .order_by("-number")
                .first()
            )
            status = previous.snapshot["status"] if previous else Record.Status.ACCEPTED
            _set_status_locked(
                current,
                status=status,
                actor=actor,
                message=f"No longer superseded by {source.key}",
                now=now,
                related=source,
            )


def record_supersede(*, old: Record, new: Record, actor, note: str = "") -> Link:
    """`new` replaces `old`: a supersedes link from new to old; old becomes superseded."""
    return record_link(source=new, target=old, type=Link.Type.SUPERSEDES, actor=actor, note=note)


def carryable_links(*, old: Record, actor):
    """The links of `old` a successor may take over: its own outgoing links (what it depends on,
    implements, …), except supersedes, to records the actor can see that are not archived."""
    return (
        old.outgoing_links.exclude(type=Link.Type.SUPERSEDES)
        .filter(target__in=Record.objects.visible_to(actor).active())
        .select_related("target")
        .order_by("pk")
    )


@transaction.atomic
def record_supersede_with_new(
    *,
    old: Record,
    actor,
    fields: dict[str, Any],
    copy_links: Iterable[int] = (),
    note: str = "",
    message: str = "",
    allow_secrets: bool = False,
    submission: tuple[str, str] | None = None,
) -> tuple[Record, Link]:
    """Create a successor of `old` (same space, same kind) from `fields` (keyword arguments of
    record_create), link it new → old with `supersedes` (old becomes superseded), and give it
    the links of `old` named in `copy_links` (ids from `carryable_links`). All or nothing.

    Returns (new record, supersedes link)."""
    require_view(actor, old)
    require_edit(actor, old.space)
    available = {link.pk: link for link in carryable_links(old=old, actor=actor)}
    wanted = list(dict.fromkeys(copy_links))
    unknown = [pk for pk in wanted if pk not in available]
    if unknown:
        raise InvalidInput(
            f"{old.key} has no link {unknown[0]} to carry over.",
            details={"copy_links": [f"Not a link of {old.key}: {', '.join(map(str, unknown))}."]},
        )
    new = record_create(
        space=old.space,
        kind=old.kind,
        actor=actor,
        message=message or f"Supersedes {old.key}",
        allow_secrets=allow_secrets,
        submission=submission,
        **fields,
    )
    link = record_supersede(old=old, new=new, actor=actor, note=note)
    for pk in wanted:
        carried = available[pk]
        record_link(
            source=new, target=carried.target, type=carried.type, note=carried.note, actor=actor
        )
    return new, link

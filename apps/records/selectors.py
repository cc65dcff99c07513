"""Reads of records that take more than one query."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Prefetch

from apps.accounts.access import visible_record_ids
from apps.records import fields as record_fields
from apps.records.models import (
    Link,
    Record,
    RecordQuerySet,
    Revision,
    SuspectReason,
    Verification,
)

# How every door shows a related record (a link's other end, a successor, the record a suspect
# reason names) that the viewer may not see: no title, key, status or URL.
HIDDEN_RECORD = "a record in a space you cannot see"


@dataclass(frozen=True)
class HiddenRecord:
    """Stands in for a related record the viewer cannot see (templates test `other.hidden`)."""

    hidden: bool = True

    def __str__(self) -> str:
        return HIDDEN_RECORD


HIDDEN = HiddenRecord()


def reason_refs(cause: str, cause_record_id: int | None, details: dict | None) -> set[int | None]:
    """The records a suspect reason names (None: one that no longer exists)."""
    if cause != SuspectReason.Cause.LINKED_RECORD_CHANGED:
        return set()
    refs = {cause_record_id}
    by = (details or {}).get("by")
    if by is not None:
        refs.add(by)
    return refs


_WHY_BY_STATUS: dict[str | None, str] = {
    Record.Status.SUPERSEDED: "was superseded",
    Record.Status.DEPRECATED: "was deprecated",
    Record.Status.REJECTED: "was rejected",
}


def reason_text(
    *,
    cause: str,
    message: str,
    cause_record_id: int | None,
    cause_url: str,
    details: dict | None,
    visible: set[int],
) -> tuple[str, str]:
    """(message, url) of a suspect reason as this viewer may read it. The stored message names
    the record that changed (and its successor); when the viewer cannot see one of them, it is
    rebuilt from the stored references with that record shown as HIDDEN_RECORD and no URL."""
    refs = reason_refs(cause, cause_record_id, details)
    if not refs or refs <= visible:
        return message, cause_url
    details = details or {}
    cause_seen = cause_record_id in visible
    if cause_seen:
        subject = details.get("subject") or details.get("key") or "A linked record"
    else:
        subject = HIDDEN_RECORD[0].upper() + HIDDEN_RECORD[1:]
    why = details.get("why") or _WHY_BY_STATUS.get(details.get("status"), "was changed")
    by = details.get("by")
    if by is not None:
        why = f"{why} by {details.get('by_key', '') if by in visible else HIDDEN_RECORD}".rstrip()
    return f"{subject} {why}"[:500], cause_url if cause_seen else ""


def present_reasons(principal, reasons: Iterable[SuspectReason]) -> list[SuspectReason]:
    """The reasons with `text` and `url` set for this viewer (one query, only when some reason
    names another record). Templates and texts show `text`/`url`, never the stored message."""
    reasons = list(reasons)
    refs: set = set()
    for r in reasons:
        refs |= reason_refs(r.cause, r.cause_record_id, r.details)
    visible = visible_record_ids(principal, refs)
    for r in reasons:
        r.text, r.url = reason_text(
            cause=r.cause,
            message=r.message,
            cause_record_id=r.cause_record_id,
            cause_url=r.cause_url,
            details=r.details,
            visible=visible,
        )
    return reasons


def related_or_hidden(record: Record | None, visible: set[int]) -> Record | HiddenRecord | None:
    """The related record itself when the viewer may see it, else HIDDEN."""
    if record is None:
        return None
    return record if record.pk in visible else HIDDEN


def record_list_visible(*, principal, include_archived: bool = False) -> RecordQuerySet:
    """Records the principal may see, with what list views show, in a constant number of queries."""
    qs = (
        Record.objects.visible_to(principal)
        .select_related("space", "owner_user", "owner_team")
        .with_freshness()
    )
    if not include_archived:
        qs = qs.active()
    return qs


def record_get_by_key(*, principal, space_slug: str, key: str) -> Record | None:
    return (
        record_list_visible(principal=principal, include_archived=True)
        .filter(space__slug=space_slug, key__iexact=key)
        .first()
    )


def record_detail(*, principal, pk: int) -> Record | None:
    """One record with its links (both ways), open reasons and recent verifications."""
    return (
        record_list_visible(principal=principal, include_archived=True)
        .prefetch_related(
            Prefetch("outgoing_links", queryset=Link.objects.select_related("target")),
            Prefetch("incoming_links", queryset=Link.objects.select_related("source")),
            Prefetch(
                "suspect_reasons",
                queryset=SuspectReason.objects.filter(resolved_at__isnull=True).select_related(
                    "cause_record"
                ),
                to_attr="open_reasons",
            ),
        )
        .filter(pk=pk)
        .first()
    )


def links_grouped(
    record: Record, *, principal
) -> dict[str, list[tuple[str, Record | HiddenRecord, Link]]]:
    """{"outgoing": [(label, other, link)], "incoming": [...]}, grouped by type label; a linked
    record the principal cannot see is HIDDEN (one query for the visibility check)."""
    outgoing, incoming = list(record.outgoing_links.all()), list(record.incoming_links.all())
    visible = visible_record_ids(
        principal, [lk.target_id for lk in outgoing] + [lk.source_id for lk in incoming]
    )
    groups: dict[str, list] = defaultdict(list)
    for link in outgoing:
        other = related_or_hidden(link.target, visible)
        groups["outgoing"].append((link.get_type_display(), other, link))
    for link in incoming:
        other = related_or_hidden(link.source, visible)
        groups["incoming"].append((Link.INVERSE_LABELS[link.type], other, link))
    return dict(groups)


def successor_of(record: Record) -> Record | None:
    """The newest record that supersedes this one, if any (whoever may see it: callers show it
    through `successor_for`)."""
    link = (
        Link.objects.filter(target=record, type=Link.Type.SUPERSEDES)
        .select_related("source")
        .order_by("-created_at")
        .first()
    )
    return link.source if link else None


def successor_for(*, principal, record: Record) -> Record | HiddenRecord | None:
    """The newest successor of a record as this principal may see it (HIDDEN when it lives in a
    space they cannot see)."""
    successor = successor_of(record)
    if successor is None:
        return None
    return related_or_hidden(successor, visible_record_ids(principal, [successor.pk]))


# The revision messages records.services writes when a link or a supersede names a record.
_NAMES_A_RECORD = re.compile(
    r"^(?:(?:Linked|Unlinked): .* |(?:No longer )?[Ss]uperseded by )(\S+)$"
)


def present_revisions(principal, revisions: Iterable[Revision]) -> list[Revision]:
    """The revisions with `text` (the message) and `shown_snapshot` set for this reader: a linked
    record or successor they cannot see is named HIDDEN_RECORD instead of by its key (and a
    snapshot link whose target is unknown is hidden too). Two queries at most, whatever the
    number of revisions; templates, serializers and `revision_diff` use these attributes."""
    revisions = list(revisions)
    refs: set = set()
    for rev in revisions:
        refs.add(rev.related_record_id)
        refs |= {link.get("target_id") for link in (rev.snapshot or {}).get("links") or []}
    visible = visible_record_ids(principal, refs)
    hidden = {pk for pk in refs if pk is not None and pk not in visible}
    keys = dict(Record.objects.filter(pk__in=hidden).values_list("pk", "key")) if hidden else {}
    for rev in revisions:
        rev.text = rev.message
        if rev.related_record_id is None:
            # A message naming a record that could not be told (or no longer exists).
            named = _NAMES_A_RECORD.match(rev.message)
            key = named.group(1) if named else None
        else:
            key = keys.get(rev.related_record_id)
        if key:
            rev.text = re.sub(rf"(?<![\w-]){re.escape(key)}(?![\w-])", HIDDEN_RECORD, rev.message)
        snapshot = dict(rev.snapshot or {})
        if "links" in snapshot:
            snapshot["links"] = [
                link
                if link.get("target_id") in visible
                else {"type": link.get("type"), "target": HIDDEN_RECORD}
                for link in snapshot["links"] or []
            ]
        rev.shown_snapshot = snapshot
    return revisions


def present_verification(principal, verification):
    """The verification with `shown_linked_versions`: the versions of linked records it saw,
    without those the reader cannot see (they are keyed by key, which would name them)."""
    targets = dict(
        Link.objects.filter(source_id=verification.record_id).values_list(
            "target_id", "target__key"
        )
    )
    visible = visible_record_ids(principal, targets)
    shown = {key for pk, key in targets.items() if pk in visible}
    hidden = {key for pk, key in targets.items() if pk not in visible} - shown
    verification.shown_linked_versions = {
        key: version
        for key, version in (verification.linked_versions or {}).items()
        if key not in hidden
    }
    return verification


# The snapshot keys a revision diff compares, in reading order: the editable fields (from the one
# table of fields, apps.records.fields; the owner as its label), then archived and links, the
# body last.
DIFF_FIELDS = (
    *(name for name in dict.fromkeys(f.diff for f in record_fields.FIELDS) if name != "body"),
    "archived",
    "links",
    "body",
)


def _as_lines(name: str, value) -> list[str]:
    if isinstance(value, list):
        return [
            str(v if not isinstance(v, dict) else f"{v.get('type')} {v.get('target')}")
            for v in value
        ]
    if name == "body":
        return (value or "").splitlines()
    return [] if value in (None, "") else [str(value)]


def revision_diff(old: Revision, new: Revision) -> list[dict]:
    """Per-field unified diffs between two revisions of the same record (only changed fields),
    as the reader may see them: both must have gone through `present_revisions`."""
    out = []
    for name in DIFF_FIELDS:
        a = _as_lines(name, old.shown_snapshot.get(name))
        b = _as_lines(name, new.shown_snapshot.get(name))
        if a == b:
            continue
        out.append(
            {
                "field": name,
                "old": a,
                "new": b,
                "unified": list(
                    difflib.unified_diff(a, b, f"r{old.number}", f"r{new.number}", lineterm="", n=3)
                ),
            }
        )
    return out


@dataclass
class VerificationEntry:
    """One line of a record's verification timeline. A run of owner edits is one line."""

    verification: Verification  # the newest of the run
    revision: int | None  # the revision number it confirmed (the newest, for a run)
    first_revision: int | None = None  # the oldest revision of a run of owner edits
    edits: int = 0  # how many owner edits the line stands for (0: an explicit verification)


def verification_timeline(
    record: Record, *, limit: int = 10
) -> tuple[list[VerificationEntry], bool]:
    """The newest verifications, newest first, named by revision number (as the history is), with
    consecutive owner edits folded into one line; and whether there are more. Two queries."""
    rows = list(record.verifications.select_related("actor")[: limit * 10 + 1])
    truncated = len(rows) > limit * 10
    rows = rows[: limit * 10]
    # A verification confirmed the record's content at `record_version`: the newest revision of
    # that version written by then (link changes add revisions without a new version).
    revisions: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
    for number, version, created_at in (
        Revision.objects.filter(record=record, version__in={v.record_version for v in rows})
        .order_by("number")
        .values_list("number", "version", "created_at")
    ):
        revisions[version].append((number, created_at))

    def revision_of(v: Verification) -> int | None:
        candidates = revisions.get(v.record_version) or []
        seen = [number for number, created_at in candidates if created_at <= v.created_at]
        if seen:
            return seen[-1]
        return candidates[0][0] if candidates else None

    entries: list[VerificationEntry] = []
    for v in rows:
        is_edit = v.note == Verification.OWNER_EDIT_NOTE
        previous = entries[-1] if entries else None
        if (
            is_edit
            and previous is not None
            and previous.edits
            and previous.verification.actor_id == v.actor_id
        ):
            previous.edits += 1
            previous.first_revision = revision_of(v)
            continue
        revision = revision_of(v)
        entries.append(
            VerificationEntry(
                verification=v,
                revision=revision,
                first_revision=revision if is_edit else None,
                edits=1 if is_edit else 0,
            )
        )
    more = truncated or len(entries) > limit
    return entries[:limit], more

"""One record as a bundle item: its row (one query for all the records of a bundle), the
reasons it may no longer hold worded for the reader, its owner and its URL.

`record_rows`, `present_reasons`, then `record_item`: the one way a record becomes an item, for
a context bundle (search_context, the context API) and for MCP's get_record alike."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any, cast

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from apps.accounts import access
from apps.core.text import reveal_invisible
from apps.records import policy
from apps.records import selectors as record_selectors
from apps.records.models import Record
from apps.retrieval import search


@functools.lru_cache(maxsize=1024)
def _record_url_pattern(slug: str) -> str:
    try:
        return reverse("web:record_detail", kwargs={"slug": slug, "key": "KEY-0"}).replace(
            "KEY-0", "{key}"
        )
    except NoReverseMatch:
        return f"/s/{slug}/{{key}}/"


def _url(slug: str, key: str) -> str:
    return settings.SITE_URL + _record_url_pattern(slug).format(key=key)


def record_url(record: Record) -> str:
    return _url(record.space.slug, record.key)


def _date(value) -> str | None:
    return None if value is None else value.isoformat()


def _reasons(row, open_reasons, now: dt.datetime) -> list[str]:
    """Why a record may no longer hold (`row` has freshness, status, next_review_at,
    valid_until and last_verified_at), worded to match its freshness."""
    reasons = list(open_reasons or [])
    if row.get("status") == Record.Status.SUPERSEDED:
        reasons.append("It is superseded.")
    elif row["freshness"] == Record.Freshness.STALE:
        reasons.append(f"Its review was due on {row['next_review_at']:%Y-%m-%d}.")
    elif row["freshness"] == Record.Freshness.DUE:
        if "last_verified_at" in row and row["last_verified_at"] is None:
            reasons.append("It has never been verified.")
        reasons.append(f"Its review is due on {row['next_review_at']:%Y-%m-%d}.")
    elif row["freshness"] == Record.Freshness.UNVERIFIED and "created_at" in row:
        reasons.append(
            policy.unverified_note(
                created_at=row["created_at"], next_review_at=row["next_review_at"], now=now
            )
        )
    if policy.valid_until_passed(row["valid_until"], now=now):
        reasons.append(f"It was valid until {row['valid_until']:%Y-%m-%d}.")
    return reasons


def row_reasons(row: dict, now: dt.datetime) -> list[str]:
    """`_reasons` of a row of `record_rows`."""
    return _reasons(row, row["open_reasons"], now)


def freshness_reasons(record: Record, now: dt.datetime) -> list[str]:
    """Why a record may no longer hold; its `open_reasons` must have gone through
    `records.selectors.present_reasons` for the reader (their `text`, never the stored message,
    which may name records the reader cannot see)."""
    reasons = getattr(record, "open_reason_messages", None)
    if reasons is None:
        reasons = [r.text for r in getattr(record, "open_reasons", [])]
    row = {
        "freshness": record.freshness,
        "status": record.status,
        "next_review_at": record.next_review_at,
        "valid_until": record.valid_until,
        "last_verified_at": record.last_verified_at,
        "created_at": record.created_at,
    }
    return _reasons(row, reasons, now)


def owner_of(record: Record) -> dict | None:
    # The ids first: no query for an owner the record does not have.
    user = record.owner_user if record.owner_user_id else None
    if user is not None:
        return {"type": "user", "name": user.display_name, "email": user.email}
    team = record.owner_team if record.owner_team_id else None
    if team is not None:
        return {"type": "team", "name": team.name, "email": None}
    return None


# The records a bundle needs, as plain rows: owner, space, stored token counts and open suspect
# reasons (newest first) in one query, no model instances. Raw SQL because this is the hot path:
# the equivalent ORM query took about 1 ms a request to compile.
_ROWS_SQL = """
    SELECT r.id, r.key, r.kind, r.title, r.summary, r.body, r.status, r.freshness,
           r.next_review_at, r.valid_until, r.last_verified_at, r.created_at, r.anchors,
           r.owner_user_id, r.owner_team_id, s.slug AS space_slug, r.version,
           (SELECT max(v.number) FROM records_revision v WHERE v.record_id = r.id) AS revision,
           u.first_name AS owner_first, u.last_name AS owner_last,
           u.username AS owner_username, u.email AS owner_email, t.name AS team_name,
           e.token_counts AS stored_token_counts,
           ARRAY(SELECT json_build_array(sr.cause, sr.message, sr.cause_record_id, sr.details)
                 FROM records_suspectreason sr
                 WHERE sr.record_id = r.id AND sr.resolved_at IS NULL
                 ORDER BY sr.created_at DESC, sr.id DESC) AS open_reasons
    FROM records_record r
    JOIN accounts_space s ON s.id = r.space_id
    LEFT JOIN accounts_user u ON u.id = r.owner_user_id
    LEFT JOIN accounts_team t ON t.id = r.owner_team_id
    LEFT JOIN retrieval_recordembedding e ON e.record_id = r.id
    WHERE r.id = ANY(%(ids)s::bigint[]) AND r.space_id = ANY(%(space_ids)s::bigint[])
      AND r.archived_at IS NULL
"""


def record_rows(
    record_ids: set[int], space_ids: list[int], now: dt.datetime | None = None
) -> dict[int, dict]:
    """{id: row} of the active records among `record_ids` in `space_ids`, the spaces the
    principal may see (resolved by `resolve_spaces`): this is the access check. Freshness is
    derived at `now` (policy.freshness_sql), not read from the sweep's cache."""
    if not record_ids:
        return {}
    fresh_sql, fresh_params = policy.freshness_sql("r", now=now, named=True)
    params: dict[str, Any] = {"ids": list(record_ids), "space_ids": space_ids}
    params.update(cast(dict[str, Any], fresh_params))  # named=True: a dict
    rows = search.fetch_dicts(
        _ROWS_SQL.replace("r.freshness,", f"{fresh_sql} AS freshness,", 1), params
    )
    for row in rows:
        counts = row["stored_token_counts"]
        if isinstance(counts, str):
            row["stored_token_counts"] = json.loads(counts)
        row["open_reasons"] = [
            json.loads(r) if isinstance(r, str) else r for r in row["open_reasons"] or []
        ]
    return {row["id"]: row for row in rows}


def present_reasons(principal, rows: dict[int, dict]) -> None:
    """Each row's open reasons as text this principal may read: a reason naming a record in a
    space they cannot see names "a record in a space you cannot see" instead (one query, only
    when some reason names another record)."""
    refs: set = set()
    for row in rows.values():
        for cause, _, cause_record_id, details in row["open_reasons"]:
            refs |= record_selectors.reason_refs(cause, cause_record_id, details)
    visible = access.visible_record_ids(principal, refs)
    for row in rows.values():
        row["open_reasons"] = [
            record_selectors.reason_text(
                cause=cause,
                message=message,
                cause_record_id=cause_record_id,
                cause_url="",
                details=details,
                visible=visible,
            )[0]
            for cause, message, cause_record_id, details in row["open_reasons"]
        ]


def _owner(row: dict) -> dict | None:
    if row["owner_user_id"]:
        name = f"{row['owner_first']} {row['owner_last']}".strip() or row["owner_username"]
        return {"type": "user", "name": name, "email": row["owner_email"]}
    if row["owner_team_id"]:
        return {"type": "team", "name": row["team_name"], "email": None}
    return None


def omission(row: dict, reason: str, score: float | None = None) -> dict:
    """What a bundle says of a record it left out, and why."""
    entry = {"key": row["key"], "space": row["space_slug"], "title": reveal_invisible(row["title"])}
    if score is not None:
        entry["score"] = score
    entry["reason"] = reason
    return entry


def why_matched(hit: search.Hit) -> list[str]:
    """How a search hit matched the request, in words."""
    return [
        w
        for w, on in (
            ("anchored to your paths", hit.anchored),
            ("full-text match", hit.fts_rank is not None),
            ("semantic match", hit.vec_rank is not None),
        )
        if on
    ]


def record_item(
    row: dict,
    now: dt.datetime,
    *,
    score: float | None = None,
    why: list[str] | None = None,
    note: str = "",
    reasons: bool = True,
) -> dict:
    """A row of `record_rows` (its open reasons through `present_reasons`) as an item: what
    the bundle's JSON lists and its markdown block shows, with the reasons it may no longer
    hold worded to match its freshness (with `reasons=False` left None for `row_reasons` to
    fill in once the item is kept: most candidates of a bundle are left out)."""
    return {
        "id": row["id"],
        "key": row["key"],
        "space": row["space_slug"],
        "kind": row["kind"],
        "title": reveal_invisible(row["title"]),
        "status": row["status"],
        # Which version of the record this is (its ETag) and its revision number.
        "version": row["version"],
        "revision": row["revision"],
        "owner": _owner(row),
        "url": _url(row["space_slug"], row["key"]),
        "score": score,
        "freshness": row["freshness"],
        "freshness_reasons": row_reasons(row, now) if reasons else None,
        "last_verified_at": _date(row["last_verified_at"]),
        "anchors": list(row["anchors"]),
        "why": why or [],
        "note": note,
    }

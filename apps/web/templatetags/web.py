"""Small presentation helpers for the web templates."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html

from apps.records.models import Record
from apps.records.policy import UNVERIFIED, unverified_note

register = template.Library()

# The badge says what the state means ("Not yet verified"), from the model's one list of labels.
FRESHNESS_LABELS = dict(Record.Freshness.choices)

FRESHNESS_HELP = {
    "fresh": "Verified within its review interval; next review is not due yet.",
    "unverified": "Nobody has verified it yet; its first review is not due yet.",
    "due": "Its review date is coming up.",
    "stale": "Past its review date, or superseded: check it still holds.",
    "suspect": "Evidence says it may be wrong, or its valid-until date passed; see the reasons.",
}


@register.simple_tag
def freshness_badge(state: str) -> str:
    return format_html(
        '<span class="badge fresh-{}" title="{}">{}</span>',
        state,
        FRESHNESS_HELP.get(state, ""),
        FRESHNESS_LABELS.get(state, state.capitalize() if state else ""),
    )


@register.simple_tag
def freshness_note(record) -> str:
    """The dates beside a never-verified record's state ("Never verified; written 3 days ago;
    first review due …"), or nothing for any other state."""
    if getattr(record, "freshness", "") != UNVERIFIED:
        return ""
    return unverified_note(
        created_at=record.created_at, next_review_at=record.next_review_at, now=timezone.now()
    )


@register.simple_tag
def status_pill(status: str) -> str:
    return format_html('<span class="pill status-{}">{}</span>', status, status.capitalize())


@register.simple_tag
def kind_tag(kind: str) -> str:
    return format_html('<span class="kind kind-{}">{}</span>', kind, kind.capitalize())


@register.filter
def ago(value) -> str:
    """'3 days ago', 'in 5 days', or an em dash."""
    if not value:
        return "—"
    delta = timezone.now() - value
    seconds = int(delta.total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            n = seconds // size
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


@register.simple_tag(takes_context=True)
def sort_link(context, field: str, label: str) -> str:
    """A table header that sorts by `field`, toggling direction, keeping the other filters."""
    request = context["request"]
    current = context.get("sort") or ""
    params = request.GET.copy()
    params.pop("page", None)
    if current == field:
        params["sort"] = f"-{field}"
        arrow, aria = " ↑", "ascending"
    elif current == f"-{field}":
        params["sort"] = field
        arrow, aria = " ↓", "descending"
    else:
        params["sort"] = field
        arrow, aria = "", "none"
    return format_html(
        '<a href="?{}" class="sort" data-sort="{}">{}<span aria-hidden="true">{}</span></a>',
        params.urlencode(),
        aria,
        label,
        arrow,
    )

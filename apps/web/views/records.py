"""The record page and its one-click actions: verify, archive (editing is in views.editor, links
in views.links)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts import access
from apps.core.errors import InvalidInput
from apps.records import selectors as record_selectors
from apps.records import services
from apps.records.models import Link, Record, SuspectReason, Verification
from apps.records.policy import valid_until_note, valid_until_passed
from apps.retrieval.selectors import record_usage
from apps.web.forms import LinkForm
from apps.web.views.common import record_or_404, service_errors

MAX_VERIFICATIONS = 10


@login_required
@service_errors
def record_detail(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key, detail=True)
    # Linked records may live in other spaces; their URLs need the space (one query, not N).
    prefetch_related_objects(
        [record], "outgoing_links__target__space", "incoming_links__source__space"
    )
    reasons: list[SuspectReason] = record.open_reasons  # type: ignore[attr-defined]  # Prefetch(to_attr=...)
    # Related records in spaces the viewer cannot see are shown without title, key or URL.
    record_selectors.present_reasons(request.user, reasons)
    groups = record_selectors.links_grouped(record, principal=request.user)
    outgoing, incoming = (
        _by_label(groups.get("outgoing", [])),
        _by_label(groups.get("incoming", [])),
    )
    successor = (
        record_selectors.successor_for(principal=request.user, record=record)
        if record.status == Record.Status.SUPERSEDED
        else None
    )
    verifications, more_verifications = record_selectors.verification_timeline(
        record, limit=MAX_VERIFICATIONS
    )
    revisions = record_selectors.present_revisions(
        request.user, record.revisions.select_related("author")[:8]
    )
    return render(
        request,
        "web/record_detail.html",
        {
            "record": record,
            "space": record.space,
            "outgoing": outgoing,
            "incoming": incoming,
            "successor": successor,
            "verifications": verifications,
            "more_verifications": more_verifications,
            "review_overdue": record.next_review_at <= timezone.now(),
            # Derived like the badge, so it shows before the sweep has raised its reason.
            "valid_until_unflagged": valid_until_passed(record.valid_until, now=timezone.now())
            and not any(r.cause == "valid_until" for r in reasons),
            "revisions": revisions,
            "revision_count": record.revisions.count(),
            "usage": record_usage(record_ids=[record.pk])[record.pk],
            "can_verify": access.can_verify(request.user, record),
            "link_form": LinkForm(initial={"type": Link.Type.DEPENDS_ON}),
        },
    )


def _by_label(
    items: list[tuple[str, Record | record_selectors.HiddenRecord, Link]],
) -> list[tuple[str, list[tuple[Record | record_selectors.HiddenRecord, Link]]]]:
    """The links of one direction as (type label, [(other record, link)]), by label."""
    grouped: dict[str, list[tuple[Record | record_selectors.HiddenRecord, Link]]] = {}
    for label, other, link in items:
        grouped.setdefault(label, []).append((other, link))
    return sorted(grouped.items())


@login_required
@require_POST
@service_errors
def record_verify(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    outcome = request.POST.get("outcome", Verification.Outcome.STILL_TRUE)
    note = request.POST.get("note", "").replace("\x00", "")[:500]
    try:
        verification = services.record_verify(
            record=record,
            actor=request.user,
            outcome=outcome,
            note=note,
            valid_until=request.POST.get("valid_until") or None,
        )
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return redirect(record.get_absolute_url())
    if outcome == Verification.Outcome.NEEDS_UPDATE:
        messages.info(request, f"Noted that {record.key} needs an update. Edit it below.")
        return redirect("web:record_edit", slug=record.space.slug, key=record.key)
    messages.success(
        request, f"Verified: {record.key} is still true.{valid_until_note(verification)}"
    )
    return redirect(record.get_absolute_url())


@login_required
@require_POST
@service_errors
def record_archive(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    if request.POST.get("action") == "unarchive":
        services.record_unarchive(record=record, actor=request.user)
        messages.success(request, f"{record.key} is back in the space.")
    else:
        services.record_archive(record=record, actor=request.user)
        messages.success(request, f"{record.key} archived. Its history is kept.")
    return redirect(record.get_absolute_url())

"""Typed links between records: add (by key or by the picker), remove, and the picker's search."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import InvalidInput
from apps.records import services
from apps.records.models import Link
from apps.web.forms import INVERSE_PREFIX, LinkForm
from apps.web.selectors import link_candidates, link_target
from apps.web.views.common import login_required_partial, record_or_404, service_errors


@login_required
@require_POST
@service_errors
def link_add(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    form = LinkForm(request.POST)
    back = record.get_absolute_url() + "#links"
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        label = {"type": "Link type", "note": "Note", "q": "Record", "target": "Record"}
        messages.error(request, f"{label.get(field, field)}: {errors[0]} Nothing was linked.")
        return redirect(back)
    text = (form.cleaned_data.get("target") or form.cleaned_data.get("q") or "").strip()
    if not text:
        messages.error(request, "Type a key or words from the title, then pick a record.")
        return redirect(back)
    target, ambiguous = link_target(principal=request.user, record=record, text=text)
    if target is not None and target.pk == record.pk:
        messages.error(request, f"{record.key} cannot link to itself.")
        return redirect(back)
    if target is None:
        if ambiguous:
            problem = f"“{text}” matches several records; pick one from the list as you type."
        else:
            problem = f"No record in {record.space.name} matches “{text}”."
        messages.error(request, problem + " Nothing was linked.")
        return redirect(back)
    link_type = form.cleaned_data["type"]
    source = record
    if link_type.startswith(INVERSE_PREFIX):
        link_type = link_type.removeprefix(INVERSE_PREFIX)
        source, target = target, record
    try:
        link = services.record_link(
            source=source,
            target=target,
            type=link_type,
            note=form.cleaned_data.get("note", ""),
            actor=request.user,
        )
    except InvalidInput as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Linked: {source.key} {link.get_type_display()} {target.key}.")
    return redirect(back)


@login_required
@require_POST
@service_errors
def link_remove(request: HttpRequest, slug: str, key: str, link_id: int) -> HttpResponse:
    record = record_or_404(request, slug, key)
    # A link can be removed from the page of either record it joins.
    link = (
        Link.objects.select_related("source__space", "target__space")
        .filter(Q(source=record) | Q(target=record), pk=link_id)
        .first()
    )
    if link is None:
        messages.error(request, "That link no longer exists.")
        return redirect(record.get_absolute_url() + "#links")
    label = f"{link.source.key} {link.get_type_display()} {link.target.key}"
    services.record_unlink(link=link, actor=request.user)
    messages.success(request, f"Removed: {label}.")
    return redirect(record.get_absolute_url() + "#links")


@login_required_partial
@service_errors
def link_search(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """htmx: the picker's results as the user types."""
    record = record_or_404(request, slug, key)
    text = request.GET.get("q", "")
    results = link_candidates(principal=request.user, record=record, text=text)
    return render(
        request, "web/partials/link_results.html", {"results": results, "text": text.strip()}
    )

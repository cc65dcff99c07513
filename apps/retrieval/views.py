"""The gaps page: what AI tools asked for and did not find, per space."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from apps.accounts import access
from apps.accounts.models import Space
from apps.core.errors import ServiceError
from apps.retrieval import selectors, services
from apps.retrieval.models import Gap


def _space(request: HttpRequest, slug: str) -> Space:
    space = Space.objects.visible_to(request.user).filter(slug=slug).first()
    if space is None:
        raise Http404("No such space.")
    return space


def _create_url(space: Space, gap: Gap) -> str:
    try:
        base = reverse("web:record_create", kwargs={"slug": space.slug})
    except NoReverseMatch:
        base = f"/s/{space.slug}/new/"
    return f"{base}?{urlencode({'title': gap.query[:200], 'gap': gap.pk})}"


@login_required
def space_gaps(request: HttpRequest, slug: str) -> HttpResponse:
    space = _space(request, slug)
    gaps = list(selectors.gap_list(principal=request.user, space=space)[:200])
    for gap in gaps:
        gap.create_url = _create_url(space, gap)
    return render(
        request,
        "retrieval/gaps.html",
        {"space": space, "gaps": gaps, "can_edit": access.can_edit(request.user, space)},
    )


@login_required
@require_POST
def gap_dismiss(request: HttpRequest, slug: str, gap_id: int) -> HttpResponse:
    space = _space(request, slug)
    gap = get_object_or_404(Gap, pk=gap_id, space=space)
    try:
        services.gap_dismiss(gap=gap, actor=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("retrieval:space_gaps", slug=space.slug)
    messages.success(request, f"Dismissed “{gap.query[:80]}”.")
    return redirect("retrieval:space_gaps", slug=space.slug)

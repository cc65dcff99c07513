"""Shared helpers of the web views: access lookups and service-error mapping."""

from __future__ import annotations

import functools
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.accounts import access
from apps.accounts.models import Space
from apps.core.errors import Conflict, Forbidden, NotFound
from apps.records import selectors
from apps.records.models import Record


def space_or_404(request: HttpRequest, slug: str) -> Space:
    """The space if the user may see it; otherwise 404, so existence does not leak."""
    space = Space.objects.visible_to(request.user).filter(slug=slug).first()
    if space is None:
        raise Http404("No such space.")
    space.role = access.role_in(request.user, space)
    space.can_edit = access.can_edit(request.user, space)
    space.can_admin = access.can_admin(request.user, space)
    return space


def record_or_404(request: HttpRequest, slug: str, key: str, *, detail: bool = False) -> Record:
    record = selectors.record_get_by_key(principal=request.user, space_slug=slug, key=key)
    if record is None:
        raise Http404("No such record.")
    if detail:
        detailed = selectors.record_detail(principal=request.user, pk=record.pk)
        if detailed is None:  # deleted since the line above
            raise Http404("No such record.")
        record = detailed
    space = record.space
    space.role = access.role_in(request.user, space)
    space.can_edit = access.can_edit(request.user, space)
    space.can_admin = access.can_admin(request.user, space)
    return record


def _page_of(request: HttpRequest) -> str:
    """The page a POST came from when the browser sent no Referer."""
    kwargs = request.resolver_match.kwargs if request.resolver_match else {}
    if "key" in kwargs:
        return reverse("web:record_detail", kwargs={"slug": kwargs["slug"], "key": kwargs["key"]})
    if "slug" in kwargs:
        name = "web:space_members" if "/members/" in request.path else "web:space_home"
        return reverse(name, kwargs={"slug": kwargs["slug"]})
    return reverse("home")


def login_required_partial(view):
    """login_required for htmx partials: a page would be swapped into the editor, so a request
    whose session has ended gets a short note instead of the login page (200, so htmx shows it)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.headers.get("HX-Request"):
            referer = request.headers.get("referer") or ""
            next_url = urlsplit(referer).path if referer else "/"
            login = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': next_url})}"
            return render(request, "web/partials/session_ended.html", {"login_url": login})
        return redirect_to_login(request.get_full_path())

    return wrapper


def service_errors(view):
    """Map service refusals: NotFound → 404, Forbidden → 403 page, Conflict → a message on the
    page the user came from. InvalidInput is handled by each form view (errors by field)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None
        except Conflict as exc:
            messages.error(request, exc.message)
            back = request.headers.get("referer") or ""
            if not url_has_allowed_host_and_scheme(
                back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ):
                back = _page_of(request)
            return redirect(back)

    return wrapper

"""Space list, space home (the record table), space creation and members."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import services as account_services
from apps.accounts.models import Membership, Space, Team, User
from apps.core.errors import Conflict, InvalidInput
from apps.core.types import AuthenticatedHttpRequest
from apps.records.models import Record
from apps.retrieval import selectors as retrieval_selectors
from apps.web import selectors
from apps.web.forms import MemberForm, RoleForm, SpaceForm
from apps.web.views.common import service_errors, space_or_404

PAGE_SIZE = 50
# People offered when adding a member (typing any other username or email works too).
MAX_PEOPLE = 500


@login_required
def space_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    spaces = (
        Space.objects.visible_to(request.user)
        .annotate(n_records=Count("records", filter=Q(records__archived_at__isnull=True)))
        .order_by("name")
    )
    # Stale or suspect as derived now (not the sweep's cache), per space, in one grouped query.
    attention = dict(
        Record.objects.active()
        .filter(space__in=Space.objects.visible_to(request.user).values("pk"))
        .with_freshness()
        .filter(live_freshness__in=[Record.Freshness.STALE, Record.Freshness.SUSPECT])
        .order_by()
        .values("space_id")
        .annotate(n=Count("id"))
        .values_list("space_id", "n")
    )
    roles = dict(Membership.objects.filter(user=request.user).values_list("space_id", "role"))
    for space in spaces:
        space.my_role = roles.get(space.pk, "admin" if request.user.is_superuser else "")
        space.n_attention = attention.get(space.pk, 0)
    return render(request, "web/space_list.html", {"spaces": spaces})


@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Search every space the user may see, with the engine a space's search uses."""
    q = (request.GET.get("q") or "").replace("\x00", "").strip()[:200]
    kind = request.GET.get("kind") or ""
    kind = kind if kind in Record.Kind.values else ""
    records = selectors.search_everywhere(principal=request.user, q=q, kind=kind)
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    marks = retrieval_selectors.highlights(record_ids=[r.pk for r in page.object_list], query=q)
    for record in page.object_list:
        record.highlight = marks.get(record.pk)  # type: ignore[attr-defined]  # for the template
    return render(
        request,
        "web/search.html",
        {"q": q, "kind": kind, "kinds": Record.Kind.choices, "page": page},
    )


@login_required
@require_http_methods(["GET", "POST"])
def space_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SpaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = account_services.space_create(actor=request.user, **form.cleaned_data)
        except (InvalidInput, Conflict) as exc:
            for name, errors in (exc.details or {}).items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            if not exc.details:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Space {space.name} created. You are its admin.")
            return redirect("web:space_home", slug=space.slug)
    return render(request, "web/space_form.html", {"form": form})


@login_required
def space_home(request: HttpRequest, slug: str) -> HttpResponse:
    space = space_or_404(request, slug)
    filters = selectors.RecordFilters.from_query(request.GET)
    records = selectors.space_records(
        principal=request.user, space=space, filters=filters, user=request.user
    )
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    if filters.q:
        # The words found, marked in the titles and excerpts of this page.
        marks = retrieval_selectors.highlights(
            record_ids=[r.pk for r in page.object_list], query=filters.q
        )
        for record in page.object_list:
            record.highlight = marks.get(record.pk)  # type: ignore[attr-defined]  # for the template
    members = User.objects.filter(memberships__space=space).order_by("username")
    owner_options = [("me", "Me"), ("none", "Unowned")]
    owner_options += [(f"u:{m.pk}", m.display_name) for m in members]
    owner_options += [(f"t:{t.pk}", f"Team: {t.name}") for t in Team.objects.all()]
    counts = selectors.space_counts(space)
    return render(
        request,
        "web/space_home.html",
        {
            "space": space,
            "page": page,
            "filters": filters,
            "counts": counts,
            "freshness_stats": [
                (value, label, counts[value]) for value, label in Record.Freshness.choices
            ],
            "tags": selectors.space_tags(space),
            "owner_options": owner_options,
            "kinds": Record.Kind.choices,
            "statuses": Record.Status.choices,
            "freshness_states": Record.Freshness.choices,
            # "" is the default order: best match with a search, else recently updated. The menu
            # sends "" unless another order was picked, so a search typed into the box is
            # ranked by relevance even when the page before it was sorted by date.
            "sort": filters.sort,
            "sort_options": [
                ("", "Best match" if filters.q else "Recently updated"),
                *(
                    (value, label)
                    for value, label in selectors.SORT_CHOICES
                    if filters.q or value != selectors.DEFAULT_SORT
                ),
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@service_errors
def space_members(request: HttpRequest, slug: str) -> HttpResponse:
    space = space_or_404(request, slug)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        if not space.can_admin:
            raise PermissionDenied(f"Only admins of {space.name} can manage its members.")
        if form.is_valid():
            try:
                membership = account_services.membership_set(
                    space=space,
                    user=form.cleaned_data["user"],
                    role=form.cleaned_data["role"],
                    actor=request.user,
                )
            except InvalidInput as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, f"{membership.user} is now {membership.get_role_display().lower()}."
                )
                return redirect("web:space_members", slug=space.slug)
    memberships = space.memberships.select_related("user").order_by("user__username")
    people = (
        User.objects.filter(is_active=True)
        .exclude(memberships__space=space)
        .order_by("username")
        .only("username", "first_name", "last_name", "email")[:MAX_PEOPLE]
        if space.can_admin
        else []
    )
    return render(
        request,
        "web/space_members.html",
        {
            "space": space,
            "memberships": memberships,
            "form": form,
            "roles": Membership.Role.choices,
            "people": people,
        },
    )


@login_required
@require_POST
@service_errors
def member_role(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    space = space_or_404(request, slug)
    user = get_object_or_404(User, pk=user_id, memberships__space=space)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role from the list.")
    else:
        account_services.membership_set(
            space=space, user=user, role=form.cleaned_data["role"], actor=request.user
        )
        messages.success(request, f"{user} is now {form.cleaned_data['role']}.")
    return redirect("web:space_members", slug=space.slug)


@login_required
@require_POST
@service_errors
def member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    space = space_or_404(request, slug)
    user = get_object_or_404(User, pk=user_id, memberships__space=space)
    account_services.membership_remove(space=space, user=user, actor=request.user)
    messages.success(request, f"{user} was removed from {space.name}.")
    if user == request.user:
        return redirect("web:space_list")
    return redirect("web:space_members", slug=space.slug)

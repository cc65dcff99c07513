"""Health dashboard, review queue, digest settings and the pages behind one-click email links."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.accounts import access
from apps.accounts.models import Space, User
from apps.core.errors import Forbidden, InvalidInput
from apps.records.evidence import record_path
from apps.records.models import Record
from apps.reminders import charts, selectors, services, tokens
from apps.reminders.forms import DigestSettingsForm, PolicyForm
from apps.reminders.models import UsedLink


def _health_context(request, spaces, *, coverage: bool) -> dict:
    now = timezone.now()
    data = selectors.health(spaces=spaces, now=now, coverage=coverage)
    data["chart"] = charts.trend_chart(data["trend"], today=timezone.localdate(now))
    return data


@login_required
def health(request):
    spaces = Space.objects.visible_to(request.user)
    context = _health_context(request, spaces, coverage=True)
    context["spaces"] = spaces
    return render(request, "reminders/health.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def space_health(request, slug: str):
    space = Space.objects.visible_to(request.user).filter(slug=slug).first()
    if space is None:
        raise Http404("No such space.")
    is_admin = access.can_admin(request.user, space)
    form = PolicyForm(request.POST or None, space=space)
    saved = False
    if request.method == "POST":
        if not is_admin:
            return render(
                request,
                "reminders/message.html",
                {
                    "heading": "Not allowed",
                    "text": f"Only admins of {space.name} can change its review policy.",
                },
                status=403,
            )
        if form.is_valid():
            try:
                services.space_policy_update(
                    space=space,
                    actor=request.user,
                    intervals=form.intervals(),
                    due_window_days=form.cleaned_data["due_window_days"],
                    escalation_days=form.cleaned_data["escalation_days"],
                )
            except (InvalidInput, Forbidden) as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(f"{request.path}?saved=1")
    saved = request.GET.get("saved") == "1"
    context = _health_context(request, Space.objects.filter(pk=space.pk), coverage=False)
    context.update({"space": space, "form": form, "is_admin": is_admin, "saved": saved})
    return render(
        request, "reminders/space_health.html", context, status=400 if form.errors else 200
    )


@login_required
def review_queue(request):
    queue = selectors.review_queue(user=request.user)
    return render(request, "reminders/review_queue.html", {"queue": queue})


@login_required
@require_http_methods(["POST"])
def review_verify(request, pk: int):
    """ "Still true" from the review queue (signed in)."""
    record = Record.objects.visible_to(request.user).filter(pk=pk).first()
    if record is None:
        raise Http404("No such record.")
    from apps.records import services as record_services

    try:
        record_services.record_verify(record=record, actor=request.user)
    except (Forbidden, InvalidInput) as exc:
        return render(
            request,
            "reminders/message.html",
            {"heading": "Not verified", "text": str(exc)},
            status=403,
        )
    return redirect("reminders:review_queue")


@login_required
@require_http_methods(["GET", "POST"])
def digest_settings(request):
    form = DigestSettingsForm(
        request.POST or None, initial={"digest_frequency": request.user.digest_frequency}
    )
    if request.method == "POST" and form.is_valid():
        services.digest_frequency_set(
            user=request.user, frequency=form.cleaned_data["digest_frequency"]
        )
        return redirect(f"{request.path}?saved=1")
    return render(
        request,
        "reminders/settings.html",
        {"form": form, "saved": request.GET.get("saved") == "1"},
    )


# --- one-click links (no login: the signed token is the credential) ----------------------------

LINK_PROBLEMS = {
    "expired": (
        "This link has expired",
        "Reminder links work for a limited time. Sign in and open your review queue instead.",
    ),
    "invalid": (
        "This link is not valid",
        "The link is incomplete or was changed. Copy the whole link from the email, or sign in "
        "and open your review queue.",
    ),
    "used": ("This link was already used", "Each reminder link works once. Nothing was changed."),
    "gone": (
        "This record is no longer here",
        "It was archived or you no longer have access to it.",
    ),
}


def _problem(request, reason: str):
    heading, text = LINK_PROBLEMS[reason]
    status = {"expired": 410, "used": 410, "invalid": 400, "gone": 404}[reason]
    return render(
        request,
        "reminders/link_problem.html",
        {"heading": heading, "text": text, "reason": reason},
        status=status,
    )


def _resolve(request, token: str, action: str):
    """(payload, record, user) or an error page."""
    try:
        payload = tokens.read_link_token(token, action=action)
    except tokens.LinkError as exc:
        return None, None, None, _problem(request, exc.reason)
    if UsedLink.objects.filter(nonce=payload.nonce).exists():
        return None, None, None, _problem(request, "used")
    user = User.objects.filter(pk=payload.user_id, is_active=True).first()
    record = (
        Record.objects.visible_to(user)
        .active()
        .select_related("space")
        .filter(pk=payload.record_id)
        .first()
        if user
        else None
    )
    if record is None:
        return None, None, None, _problem(request, "gone")
    return payload, record, user, None


@csrf_exempt  # the signed single-use token is the credential; there is no session to forge
@require_http_methods(["GET", "POST"])
def still_true(request, token: str):
    payload, record, user, problem = _resolve(request, token, "verify")
    if problem:
        return problem
    if request.method == "GET":
        # A GET never changes anything: mail scanners prefetch links.
        return render(
            request,
            "reminders/confirm.html",
            {"record": record, "action": "still_true", "record_url": record_path(record)},
        )
    try:
        verification = services.link_still_true(record=record, user=user, nonce=payload.nonce)
    except (Forbidden, InvalidInput) as exc:
        return render(
            request,
            "reminders/message.html",
            {"heading": "Not verified", "text": str(exc)},
            status=403,
        )
    if verification is None:
        return _problem(request, "used")
    record.refresh_from_db()
    return render(
        request,
        "reminders/done.html",
        {"record": record, "action": "still_true", "record_url": record_path(record)},
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def not_mine(request, token: str):
    payload, record, user, problem = _resolve(request, token, "not_mine")
    if problem:
        return problem
    if request.method == "GET":
        return render(
            request,
            "reminders/confirm.html",
            {"record": record, "action": "not_mine", "record_url": record_path(record)},
        )
    result = services.link_not_mine(record=record, user=user, nonce=payload.nonce)
    if result is None:
        return _problem(request, "used")
    return render(
        request,
        "reminders/done.html",
        {
            "record": record,
            "action": "not_mine",
            "changed": result,
            "record_url": record_path(record),
        },
    )


@csrf_exempt  # RFC 8058 one-click POSTs come from mail providers, without cookies
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        user_id = tokens.read_unsubscribe_token(token)
    except tokens.LinkError:
        return _problem(request, "invalid")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return _problem(request, "invalid")
    if request.method == "POST":
        services.unsubscribe(user=user)
        return render(request, "reminders/unsubscribed.html", {"subject": user})
    return render(request, "reminders/unsubscribe.html", {"subject": user})

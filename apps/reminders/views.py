"""Health dashboard, review queue, digest settings and the pages behind one-click email links."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.accounts import access
from apps.accounts.models import Space, User
from apps.chat import services as chat
from apps.core.errors import Forbidden, InvalidInput, VersionConflict
from apps.records import services as record_services
from apps.records.models import Record, SuspectReason
from apps.records.policy import (
    due_window_text,
    record_freshness,
    valid_until_note,
    valid_until_passed,
)
from apps.records.selectors import present_reasons
from apps.reminders import charts, selectors, services, tokens
from apps.reminders.forms import AssignOwnerForm, DigestSettingsForm, PolicyForm
from apps.reminders.models import UsedLink


def _health_context(request, spaces, *, coverage: bool) -> dict:
    now = timezone.now()
    data = selectors.health(spaces=spaces, now=now, coverage=coverage)
    data["chart"] = charts.trend_chart(data["trend"], today=timezone.localdate(now))
    data["share_bar"] = charts.share_bar(data["shares"])
    data["due_text"] = due_window_text(list(spaces.values_list("due_window_days", flat=True)))
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
    now = timezone.now()
    queue = selectors.review_queue(user=request.user, now=now)
    return render(request, "reminders/review_queue.html", {"queue": queue, "now": now})


def _queue_record(request, pk: int) -> Record:
    record = Record.objects.visible_to(request.user).active().filter(pk=pk).first()
    if record is None:
        raise Http404("No such record.")
    return record


@login_required
@require_http_methods(["POST"])
def review_verify(request, pk: int):
    """ "Still true" from the review queue (signed in)."""
    record = _queue_record(request, pk)
    try:
        verification = record_services.record_verify(record=record, actor=request.user)
    except (Forbidden, InvalidInput) as exc:
        return render(
            request,
            "reminders/message.html",
            {"heading": "Not verified", "text": str(exc)},
            status=403,
        )
    record.refresh_from_db()
    messages.success(
        request,
        f"{record.key} is verified; its next review is on {record.next_review_at:%d %b %Y}."
        f"{valid_until_note(verification)}",
    )
    return redirect("reminders:review_queue")


@login_required
@require_http_methods(["POST"])
def review_not_mine(request, pk: int):
    """ "Not mine" from the review queue: the record goes back to the space admins."""
    record = _queue_record(request, pk)
    if services.not_mine(record=record, user=request.user):
        messages.success(request, f"{record.key} went back to the admins of {record.space.name}.")
    else:
        messages.error(request, f"You do not own {record.key}; nothing was changed.")
    return redirect("reminders:review_queue")


@login_required
@require_http_methods(["POST"])
def review_assign(request, pk: int):
    """A space admin hands an orphaned record to a member (from the review queue)."""
    record = _queue_record(request, pk)
    form = AssignOwnerForm(request.POST, space=record.space)
    if not form.is_valid():
        messages.error(request, f"{record.key} was not assigned: choose a member of the space.")
        return redirect(f"{reverse('reminders:review_queue')}#orphans")
    try:
        record = record_services.record_update(
            record=record,
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            changes={"owner_user": form.cleaned_data["owner"]},
            message="Owner assigned from the review queue",
        )
    except VersionConflict:
        messages.error(
            request,
            f"{record.key} was changed by someone else meanwhile; nothing was saved. "
            "Check it and try again.",
        )
    except (Forbidden, InvalidInput) as exc:
        messages.error(request, f"{record.key} was not assigned: {exc}")
    else:
        messages.success(request, f"{record.key} is now owned by {record.owner_label}.")
    return redirect(f"{reverse('reminders:review_queue')}#orphans")


@login_required
@require_http_methods(["GET", "POST"])
def digest_settings(request):
    preference = chat.preference_of(request.user)
    form = DigestSettingsForm(
        request.POST or None,
        initial={
            "digest_frequency": request.user.digest_frequency,
            "notify_by": preference.notify_by,
            "slack_user_id": preference.slack_user_id,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                if "notify_by" in request.POST or "slack_user_id" in request.POST:
                    chat.preference_set(
                        user=request.user,
                        notify_by=data["notify_by"] or preference.notify_by,
                        slack_user_id=data["slack_user_id"],
                    )
                services.digest_frequency_set(user=request.user, frequency=data["digest_frequency"])
        except InvalidInput as exc:
            for field, errors in (exc.details or {}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            form.add_error(None, exc.message)
        else:
            return redirect(f"{request.path}?saved=1")
    spaces = Space.objects.visible_to(request.user).order_by("name")
    return render(
        request,
        "reminders/settings.html",
        {
            "form": form,
            "saved": request.GET.get("saved") == "1",
            "digest_hour": settings.REMINDERS_DIGEST_HOUR,
            "time_zone": settings.TIME_ZONE,
            "chat_spaces": [s for s in spaces.select_related("chat_channel") if _has_chat(s)],
        },
    )


def _has_chat(space: Space) -> bool:
    try:
        return space.chat_channel is not None
    except Space.chat_channel.RelatedObjectDoesNotExist:
        return False


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
    "not_yours": (
        "This record is no longer yours",
        "You handed it back, or someone gave it another owner, so this link can no longer "
        "change it. Nothing was changed.",
    ),
}


def _problem(request, reason: str):
    heading, text = LINK_PROBLEMS[reason]
    status = {"expired": 410, "used": 410, "invalid": 400, "gone": 404, "not_yours": 403}[reason]
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
    if user is None or record is None:  # no user: no record either
        return None, None, None, _problem(request, "gone")
    # Said at once (not after a Yes button): after "Not mine" or a new owner, the record's other
    # links can no longer act for this user.
    if action == "verify" and not access.can_verify(user, record):
        return None, None, None, _problem(request, "not_yours")
    if action == "not_mine" and record.owner_user_id != user.pk:
        return None, None, None, _problem(request, "not_yours")
    return payload, record, user, None


def _confirm(request, record: Record, user: User, action: str, error: str = "", status=200):
    reasons = SuspectReason.objects.filter(record=record, resolved_at__isnull=True).order_by(
        "created_at"
    )
    record.freshness = record_freshness(record, now=timezone.now(), has_open_reasons=bool(reasons))
    return render(
        request,
        "reminders/confirm.html",
        {
            "record": record,
            "action": action,
            "record_url": record.get_absolute_url(),
            "reasons": present_reasons(user, reasons),
            "link_user": user,
            "valid_until_passed": valid_until_passed(record.valid_until, now=timezone.now()),
            "error": error,
            "new_valid_until": request.POST.get("valid_until", ""),
        },
        status=status,
    )


@csrf_exempt  # the signed single-use token is the credential; there is no session to forge
@require_http_methods(["GET", "POST"])
def still_true(request, token: str):
    payload, record, user, problem = _resolve(request, token, "verify")
    if problem:
        return problem
    if request.method == "GET":
        # A GET never changes anything: mail scanners prefetch links.
        return _confirm(request, record, user, "still_true")
    try:
        verification = services.link_still_true(
            record=record,
            user=user,
            nonce=payload.nonce,
            valid_until=request.POST.get("valid_until") or None,
        )
    except (InvalidInput, Forbidden) as exc:
        if isinstance(exc, InvalidInput) and "valid_until" in (exc.details or {}):
            # A bad new valid-until date: ask again (the link was not used up).
            return _confirm(request, record, user, "still_true", error=str(exc), status=400)
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
        {
            "record": record,
            "action": "still_true",
            "record_url": record.get_absolute_url(),
            # Not columns: set on the returned object by records.services (record_verify).
            "valid_until_change": verification.valid_until_change,
            "previous_valid_until": verification.previous_valid_until,
        },
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def not_mine(request, token: str):
    payload, record, user, problem = _resolve(request, token, "not_mine")
    if problem:
        return problem
    if request.method == "GET":
        return _confirm(request, record, user, "not_mine")
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
            "record_url": record.get_absolute_url(),
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
    is_admin = user.memberships.filter(role="admin").exists()
    return render(request, "reminders/unsubscribe.html", {"subject": user, "is_admin": is_admin})

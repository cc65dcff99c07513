"""The space's Chat page (channel, recent chat deliveries, Send again) and Slack's
interactivity endpoint."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.models import Space
from apps.chat import interactions, services
from apps.chat.forms import ChannelForm
from apps.chat.models import ChatChannel
from apps.core.errors import Forbidden, InvalidInput, NotFound


@login_required
@require_http_methods(["GET", "POST"])
def space_chat(request, slug: str):
    space = get_object_or_404(Space.objects.visible_to(request.user), slug=slug)
    is_admin = access.can_admin(request.user, space)
    channel = ChatChannel.objects.filter(space=space).first()
    action = request.POST.get("action", "")
    initial = (
        {"platform": channel.platform, "slack_channel": channel.slack_channel} if channel else None
    )
    form = ChannelForm(request.POST if action == "save" else None, initial=initial)
    status, error = 200, ""
    if request.method == "POST":
        if not is_admin:
            return render(
                request,
                "reminders/message.html",
                {
                    "heading": "Not allowed",
                    "text": f"Only admins of {space.name} can change its chat channel.",
                },
                status=403,
            )
        try:
            if _apply(request, space=space, action=action, form=form):
                return redirect("chat:space_chat", slug=space.slug)
        except InvalidInput as exc:
            error = _refused(form, exc)
        except (Forbidden, NotFound) as exc:
            messages.error(request, exc.message)
            return redirect("chat:space_chat", slug=space.slug)
        status = 400
    return render(
        request,
        "chat/space_chat.html",
        {
            "space": space,
            "channel": channel,
            "error": error,
            "form": form,
            "is_admin": is_admin,
            "deliveries": services.space_deliveries(space=space) if is_admin else [],
        },
        status=status,
    )


def _apply(request, *, space: Space, action: str, form: ChannelForm) -> bool:
    """Do what the admin's button asked; False when the channel form has errors to show."""
    if action == "save":
        if not form.is_valid():
            return False
        services.channel_save(space=space, actor=request.user, **form.cleaned_data)
        messages.success(request, "Chat channel saved.")
    elif action == "test":
        messages.success(request, services.channel_test(space=space, actor=request.user))
    elif action == "remove":
        services.channel_remove(space=space, actor=request.user)
        messages.success(request, "Chat channel removed; nothing more is posted there.")
    elif action == "send_again":
        try:
            delivery_id = int(request.POST.get("delivery", ""))
        except ValueError:
            raise InvalidInput("Choose a delivery to send again.") from None
        if services.delivery_send_again(space=space, actor=request.user, delivery_id=delivery_id):
            messages.success(request, "Queued to send again.")
        else:
            messages.warning(request, "That delivery is not failed; nothing was queued.")
    else:
        raise InvalidInput("Unknown action.")
    return True


def _refused(form: ChannelForm, exc: InvalidInput) -> str:
    """A service's refusal shown on the channel form when it was sent, else as the page's error
    (returned)."""
    if not form.is_bound:
        return exc.message
    for field, errors in (exc.details or {}).items():
        if field in form.fields:
            for error in errors:
                form.add_error(field, error)
    form.add_error(None, exc.message)
    return ""


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


@csrf_exempt  # Slack signs the request; there is no session
@require_POST
def slack_interactivity(request):
    """Slack's Interactivity Request URL: a button press in a digest."""
    try:
        replies = interactions.slack_interaction(
            body=request.body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        )
    except interactions.Refused as exc:
        return _error(409 if exc.code == "replayed" else 401, exc.code, exc.message)
    except InvalidInput as exc:
        return _error(400, exc.code, exc.message)
    if replies:
        response_url = _response_url(request.body)
        if response_url:
            from apps.chat.tasks import slack_reply

            text = "\n".join(replies)
            transaction.on_commit(lambda: slack_reply.delay(response_url, text))
    # Slack only needs a 200 within three seconds; the reply goes through response_url.
    return JsonResponse({"response_type": "ephemeral", "text": "\n".join(replies)})


def _response_url(body: bytes) -> str:
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        return str(payload.get("response_url", ""))
    except (KeyError, IndexError, ValueError, AttributeError):
        return ""

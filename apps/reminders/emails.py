"""One function per email, all built by `_send`, which renders
templates/emails/<name>-subject.txt, -body.txt and -body.html and sends a multipart message."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from apps.accounts.models import User
from apps.records.evidence import record_path
from apps.reminders import tokens
from apps.reminders.selectors import SpaceGroup


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def editor_url(record) -> str:
    """The record's edit page (served by the web app); falls back to the record page + /edit/."""
    for name in ("web:record_edit", "web:record_update"):
        try:
            return absolute(reverse(name, kwargs={"slug": record.space.slug, "key": record.key}))
        except NoReverseMatch:
            continue
    return absolute(record_path(record).rstrip("/") + "/edit/")


def _attach_links(groups: list[SpaceGroup], *, user: User) -> None:
    for group in groups:
        for item in group.items:
            record = item.record
            verify = tokens.make_link_token(action="verify", record_id=record.pk, user_id=user.pk)
            not_mine = tokens.make_link_token(
                action="not_mine", record_id=record.pk, user_id=user.pk
            )
            item.links = {
                "view": absolute(record_path(record)),
                "still_true": absolute(reverse("reminders:still_true", args=[verify])),
                "update": editor_url(record),
                "not_mine": absolute(reverse("reminders:not_mine", args=[not_mine])),
            }
            for reason in item.reasons:
                url = reason.cause_url
                reason.absolute_url = absolute(url) if url.startswith("/") else url


def _send(
    *, name: str, to: User, context: dict, message_id: str, headers: dict | None = None
) -> str:
    """Render the three templates of `name` and send them with `message_id` (the delivery's
    own, the same on every attempt); returns it."""
    context = {"user": to, "site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.REMINDERS_FROM_EMAIL,
        to=[to.email],
        headers={"Message-ID": message_id, **(headers or {})},
    )
    message.attach_alternative(html, "text/html")
    message.send(using="default")
    return message_id


def _unsubscribe_headers(user: User) -> tuple[str, dict]:
    url = absolute(
        reverse("reminders:unsubscribe", args=[tokens.make_unsubscribe_token(user_id=user.pk)])
    )
    return url, {
        "List-Unsubscribe": f"<{url}>",
        # RFC 8058: mail clients may unsubscribe with one POST, no page visit.
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def digest(*, user: User, groups: list[SpaceGroup], period: str, message_id: str) -> str:
    """The owner's digest of due, stale and suspect records."""
    _attach_links(groups, user=user)
    unsubscribe_url, headers = _unsubscribe_headers(user)
    count = sum(len(g.items) for g in groups)
    return _send(
        name="digest",
        to=user,
        context={
            "groups": groups,
            "count": count,
            "period": period,
            "unsubscribe_url": unsubscribe_url,
            "settings_url": absolute(reverse("reminders:settings")),
            "queue_url": absolute(reverse("reminders:review_queue")),
        },
        message_id=message_id,
        headers=headers,
    )


def escalation(*, user: User, groups: list[SpaceGroup], period: str, message_id: str) -> str:
    """The weekly list, for space admins, of records stale too long and records without owner."""
    for group in groups:
        for item in group.items:
            item.links = {
                "view": absolute(record_path(item.record)),
                "update": editor_url(item.record),
            }
    unsubscribe_url, headers = _unsubscribe_headers(user)
    return _send(
        name="escalation",
        to=user,
        context={
            "groups": groups,
            "count": sum(len(g.items) for g in groups),
            "period": period,
            "unsubscribe_url": unsubscribe_url,
            "health_url": absolute(reverse("reminders:health")),
        },
        message_id=message_id,
        headers=headers,
    )

"""One function per email, all built by `_send`, which renders
templates/emails/<name>-subject.txt, -body.txt and -body.html and sends a multipart message."""

from __future__ import annotations

import datetime as dt
import email.policy
from collections import Counter

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.core.links import absolute_url
from apps.reminders import tokens
from apps.reminders.selectors import SpaceGroup, total_of


def _attach_links(groups: list[SpaceGroup], *, user: User) -> None:
    for group in groups:
        for item in group.items:
            record = item.record
            verify = tokens.make_link_token(action="verify", record_id=record.pk, user_id=user.pk)
            not_mine = tokens.make_link_token(
                action="not_mine", record_id=record.pk, user_id=user.pk
            )
            item.links = {
                "view": absolute_url(record.get_absolute_url()),
                "still_true": absolute_url(reverse("reminders:still_true", args=[verify])),
                "update": absolute_url(record.get_edit_url()),
                "not_mine": absolute_url(reverse("reminders:not_mine", args=[not_mine])),
            }
            for reason in item.reasons:
                url = reason.url  # worded for this recipient by the selectors
                reason.absolute_url = absolute_url(url) if url.startswith("/") else url


def _summary(groups: list[SpaceGroup]) -> dict:
    """What the email's opening lines say: counts per state (of the listed items), the total
    (listed or not) and when the one-click links stop working."""
    states = Counter(item.state for g in groups for item in g.items)
    listed = sum(len(g.items) for g in groups)
    return {
        "count": total_of(groups),
        "listed": listed,
        "unlisted": total_of(groups) - listed,
        "states": [(s, states[s]) for s in ("suspect", "stale", "due") if states[s]],
        "spaces": [g.space.name for g in groups],
        "links_expire": timezone.localdate()
        + dt.timedelta(days=settings.REMINDERS_LINK_MAX_AGE_DAYS),
    }


# Headers whose value is one long URL list. Python's email package would fold such a header by
# RFC 2047-encoding it ("=?utf-8?q?=3Chttps..."), which mail clients do not decode for these
# headers, so the one-click unsubscribe button would never appear.
RAW_HEADERS = ("List-Unsubscribe",)


class _Message(EmailMultiAlternatives):
    """A multipart email whose List-Unsubscribe header goes out as written."""

    def message(self, *, policy=email.policy.default):
        msg = super().message(policy=policy.clone(refold_source="none"))
        for name in RAW_HEADERS:
            value = self.extra_headers.get(name)
            if value:
                del msg[name]
                # Stored without policy processing, so it is not refolded (RFC 5322 allows
                # 998 characters a line; these are a few hundred at most).
                msg.set_raw(name, value)
        return msg


def _send(
    *, name: str, to: User, context: dict, message_id: str, headers: dict | None = None
) -> str:
    """Render the three templates of `name` and send them with `message_id` (the delivery's
    own, the same on every attempt); returns it."""
    context = {"user": to, "site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = _Message(
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
    url = absolute_url(
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
    return _send(
        name="digest",
        to=user,
        context={
            **_summary(groups),
            "groups": groups,
            "period": period,
            "unsubscribe_url": unsubscribe_url,
            "settings_url": absolute_url(reverse("reminders:settings")),
            "queue_url": absolute_url(reverse("reminders:review_queue")),
        },
        message_id=message_id,
        headers=headers,
    )


def escalation(*, user: User, groups: list[SpaceGroup], period: str, message_id: str) -> str:
    """The weekly list, for space admins, of records stale too long and records without owner."""
    for group in groups:
        # Not a SpaceGroup field: only this email's template shows it.
        group.health_url = absolute_url(reverse("reminders:space_health", args=[group.space.slug]))  # type: ignore[attr-defined]
        for item in group.items:
            item.links = {
                "view": absolute_url(item.record.get_absolute_url()),
                "update": absolute_url(item.record.get_edit_url()),
            }
            for reason in item.reasons:
                url = reason.url  # worded for this recipient by the selectors
                reason.absolute_url = absolute_url(url) if url.startswith("/") else url
    unsubscribe_url, headers = _unsubscribe_headers(user)
    orphaned = sum(1 for g in groups for item in g.items if item.orphaned)
    return _send(
        name="escalation",
        to=user,
        context={
            **_summary(groups),
            "orphaned": orphaned,
            "groups": groups,
            "period": period,
            "unsubscribe_url": unsubscribe_url,
            "settings_url": absolute_url(reverse("reminders:settings")),
            "health_url": absolute_url(reverse("reminders:health")),
            "orphans_url": absolute_url(reverse("reminders:review_queue")) + "#orphans",
        },
        message_id=message_id,
        headers=headers,
    )

"""Chat notifications: a space's channel (set by its admins, stored sealed), each person's
email/chat choice, planning and sending chat deliveries (Delivery rows with channel "chat",
claimed and retried exactly like emails) and `notify` for one-off messages. Slack's button
presses: apps.chat.interactions."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, User
from apps.chat import messages
from apps.chat.models import ChatChannel, ChatPreference
from apps.chat.transport import SendError, check_webhook_url, post
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.core.links import absolute_url
from apps.core.sealing import seal, unseal
from apps.reminders import selectors as reminder_selectors
from apps.reminders import services as reminder_services
from apps.reminders.models import Delivery

log = logging.getLogger(__name__)

_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_SLACK_CHANNEL = re.compile(r"^(#[a-z0-9._-]{1,80}|[CGD][A-Z0-9]{2,30})$")


# --- the space's channel ----------------------------------------------------------------------


def _require_admin(space: Space, actor) -> None:
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_admin(actor, space):
        raise Forbidden(f"Only admins of {space.name} can change its chat channel.")


@transaction.atomic
def channel_save(
    *,
    space: Space,
    actor,
    platform: str,
    webhook_url: str = "",
    bot_token: str = "",
    slack_channel: str = "",
) -> ChatChannel:
    """Set the space's channel. An empty secret keeps the stored one (it is never shown back),
    as long as the platform stays the same."""
    _require_admin(space, actor)
    if platform not in ChatChannel.Platform.values:
        raise InvalidInput(
            "Choose Slack (webhook), Slack (bot token) or Microsoft Teams.",
            details={"platform": ["Invalid choice."]},
        )
    current = ChatChannel.objects.select_for_update().filter(space=space).first()
    keep = current is not None and current.platform == platform
    name = "Slack" if platform.startswith("slack") else "Teams"
    if platform == ChatChannel.Platform.SLACK_BOT:
        secret = (bot_token or "").strip()
        if secret and not re.fullmatch(r"xoxb-[A-Za-z0-9-]{10,200}", secret):
            raise InvalidInput(
                "A Slack bot token starts with xoxb- (OAuth & Permissions → Bot User OAuth Token).",
                details={"bot_token": ["Not a bot token."]},
            )
        slack_channel = (slack_channel or "").strip()
        if not _SLACK_CHANNEL.match(slack_channel):
            raise InvalidInput(
                "Give the channel's ID (such as C0123ABCD; in Slack: channel details → About).",
                details={"slack_channel": ["Not a channel ID."]},
            )
    else:
        secret = check_webhook_url(webhook_url, platform=name) if webhook_url else ""
        slack_channel = ""
    if not secret and not keep:
        field = "bot_token" if platform == ChatChannel.Platform.SLACK_BOT else "webhook_url"
        raise InvalidInput(
            f"Enter the {name} {'bot token' if field == 'bot_token' else 'webhook URL'}.",
            details={field: ["Required."]},
        )
    channel = current or ChatChannel(space=space)
    channel.platform = platform
    if secret:
        channel.sealed_secret = seal(secret)
        channel.secret_hint = secret[-4:]
    channel.slack_channel = slack_channel
    channel.updated_by = access.user_of(actor)
    channel.updated_at = timezone.now()
    channel.save()
    return channel


@transaction.atomic
def channel_remove(*, space: Space, actor) -> bool:
    _require_admin(space, actor)
    deleted, _ = ChatChannel.objects.filter(space=space).delete()
    return bool(deleted)


def channel_test(*, space: Space, actor) -> str:
    """Post a short test message to the space's channel now (a space admin's "Send a test
    message"), so a wrong or revoked webhook shows at once. Returns what to tell the admin;
    raises InvalidInput with the platform's refusal."""
    _require_admin(space, actor)
    channel = ChatChannel.objects.filter(space=space).first()
    if channel is None:
        raise InvalidInput(f"{space.name} has no chat channel yet.")
    message = messages.Message(
        heading=f"contextkb is connected to {space.name}",
        intro="Digests, escalations and proposals of this space will be posted here.",
        footer_links=[
            ("Chat settings", absolute_url(reverse("chat:space_chat", args=[space.slug])))
        ],
    )
    try:
        _post(channel, message)
    except SendError as exc:
        raise InvalidInput(f"The test message was not delivered: {exc}") from None
    return f"A test message was posted to the {channel.platform_name} channel."


# --- each person's choice -----------------------------------------------------------------------


def preference_set(*, user: User, notify_by: str, slack_user_id: str = "") -> ChatPreference:
    if notify_by not in ChatPreference.NotifyBy.values:
        raise InvalidInput(
            f"Use one of {', '.join(ChatPreference.NotifyBy.values)}.",
            details={"notify_by": ["Invalid choice."]},
        )
    slack_user_id = (slack_user_id or "").strip()
    if slack_user_id and not _SLACK_USER_ID.match(slack_user_id):
        raise InvalidInput(
            "A Slack member ID looks like U0123ABCD (in Slack: your profile → ⋮ → Copy member ID).",
            details={"slack_user_id": ["Not a Slack member ID."]},
        )
    preference, _ = ChatPreference.objects.update_or_create(
        user=user, defaults={"notify_by": notify_by, "slack_user_id": slack_user_id}
    )
    return preference


def preference_of(user: User) -> ChatPreference:
    return ChatPreference.objects.filter(user=user).first() or ChatPreference(user=user)


def wants_email(*, user_ids: list[int]) -> list[int]:
    """`user_ids` minus those who chose chat only and have a chat channel in every space they
    belong to (anyone else keeps the email: chat only never means nothing at all)."""
    chat_only = set(
        ChatPreference.objects.filter(
            user_id__in=user_ids, notify_by=ChatPreference.NotifyBy.CHAT
        ).values_list("user_id", flat=True)
    )
    if not chat_only:
        return list(user_ids)
    uncovered = set(
        Membership.objects.filter(user_id__in=chat_only, space__chat_channel__isnull=True)
        .values_list("user_id", flat=True)
        .distinct()
    )
    return [pk for pk in user_ids if pk not in chat_only or pk in uncovered]


# --- planning ---------------------------------------------------------------------------------


def _chat_users(user_ids: list[int]) -> list[int]:
    return list(
        ChatPreference.objects.filter(
            user_id__in=user_ids,
            notify_by__in=[ChatPreference.NotifyBy.CHAT, ChatPreference.NotifyBy.BOTH],
            user__is_active=True,
        ).values_list("user_id", flat=True)
    )


def _insert(rows: Sequence[tuple[int | None, int]], *, kind: str, period: str) -> list[int]:
    if not rows:
        return []
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (user_id, space_id, kind, period, channel, payload, status,
                                 attempts, item_count, last_error, message_id, created_at)
            SELECT u, s, %s, %s, 'chat', '{{}}'::jsonb, 'pending', 0, 0, '', '', %s
            FROM unnest(%s::bigint[], %s::bigint[]) AS x(u, s)
            ON CONFLICT (user_id, kind, period, space_id) WHERE channel = 'chat' DO NOTHING
            RETURNING id
            """,  # noqa: S608 - table name is ours, values are parameters
            [kind, period, timezone.now(), [r[0] for r in rows], [r[1] for r in rows]],
        )
        return [row[0] for row in cursor.fetchall()]


def plan(
    *, user_ids: list[int], kind: str, period: str, now: dt.datetime | None = None
) -> list[int]:
    """Chat deliveries for the people among `user_ids` who chose chat (or both): a digest per
    space with a channel where they own something to review; an escalation once per space and
    week, addressed to its admins (recorded under the first admin who chose chat). Unique rows
    make overlapping planners create each once; returns the new rows' ids."""
    users = _chat_users(user_ids)
    if not users:
        return []
    now = now or timezone.now()
    with_channel = ChatChannel.objects.values("space_id")
    if kind == Delivery.Kind.DIGEST:
        attention = reminder_selectors.attention_qs(now).filter(space_id__in=with_channel)
        pairs = set(
            attention.filter(owner_user_id__in=users).values_list("owner_user_id", "space_id")
        )
        pairs |= set(
            attention.filter(owner_team__members__in=users).values_list(
                "owner_team__members", "space_id"
            )
        )
        members = set(
            Membership.objects.filter(
                user_id__in={u for u, _ in pairs}, space_id__in={s for _, s in pairs}
            ).values_list("user_id", "space_id")
        )
        chosen = set(users)  # a team's other members did not choose chat
        rows = sorted(pair for pair in pairs if pair in members and pair[0] in chosen)
    else:
        already = set(
            Delivery.objects.filter(
                channel=Delivery.Channel.CHAT, kind=kind, period=period
            ).values_list("space_id", flat=True)
        )
        first_admin: dict[int, int] = {}
        for user_id, space_id in (
            Membership.objects.filter(
                user_id__in=users, role=Membership.Role.ADMIN, space_id__in=with_channel
            )
            .order_by("space_id", "user_id")
            .values_list("user_id", "space_id")
        ):
            first_admin.setdefault(space_id, user_id)
        rows = sorted((u, s) for s, u in first_admin.items() if s not in already)
    return _insert(rows, kind=kind, period=period)


# --- one-off messages (proposals, agent escalations) ------------------------------------------


def notify(
    *,
    space: Space,
    title: str,
    text: str,
    key: str,
    user: User | None = None,
    lines: Sequence[dict] = (),
    links: Sequence[tuple[str, str]] = (),
) -> Delivery | None:
    """Post a message to `space`'s chat channel, once per `key` (e.g. "proposal-42"), through
    the same delivery rows, claim and retries as the digests. `user`: the person it is for
    (mentioned in Slack when their member ID is known; None for the space as a whole).
    `lines`: [{"title", "url", "detail": [..]}]; `links`: [(label, absolute URL)].
    Returns the delivery, or None when the space has no channel or the key was used before.
    Call it inside the caller's transaction: the send is enqueued after commit."""
    if not isinstance(key, str) or not 0 < len(key) <= 80:
        raise InvalidInput("A notice key of 1 to 80 characters.", details={"key": ["Invalid."]})
    if not ChatChannel.objects.filter(space=space).exists():
        return None
    if Delivery.objects.filter(kind=Delivery.Kind.NOTICE, space=space, period=key).exists():
        return None  # the key was used (the unique row also stops a concurrent twin)
    payload = {
        "title": str(title)[:150],
        "text": str(text)[:2500],
        "lines": [
            {
                "title": str(line.get("title", ""))[:300],
                "url": str(line.get("url", "")),
                "detail": [str(d)[:500] for d in line.get("detail", [])][:5],
            }
            for line in list(lines)[: messages.MAX_ITEMS]
        ],
        "links": [[str(label), str(url)] for label, url in links][:5],
    }
    if user is not None:
        payload["slack_user_id"] = preference_of(user).slack_user_id
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                user=user,
                space=space,
                kind=Delivery.Kind.NOTICE,
                period=key,
                channel=Delivery.Channel.CHAT,
                payload=payload,
            )
    except IntegrityError:
        return None
    from apps.reminders.tasks import send_delivery

    transaction.on_commit(lambda: send_delivery.delay(delivery.pk))
    return delivery


# --- sending ----------------------------------------------------------------------------------


def _message_for(delivery: Delivery) -> tuple[messages.Message | None, int]:
    """The message of a chat delivery and how many items it lists (None: nothing to send)."""
    if delivery.kind == Delivery.Kind.NOTICE:
        return messages.notice(delivery.payload), max(1, len(delivery.payload.get("lines", [])))
    user = delivery.user
    if user is None or not user.is_active:
        return None, 0
    if delivery.kind == Delivery.Kind.DIGEST:
        groups = reminder_selectors.digest_items(user=user)
    else:
        groups = reminder_selectors.escalation_items(user=user)
    group = next((g for g in groups if g.space.pk == delivery.space_id), None)
    if group is None or not group.total:
        return None, 0
    if delivery.kind == Delivery.Kind.DIGEST:
        message = messages.digest(
            user=user,
            group=group,
            period=delivery.period,
            slack_user_id=preference_of(user).slack_user_id,
        )
    else:
        message = messages.escalation(group=group, period=delivery.period)
    return message, group.total


def deliver(*, delivery: Delivery) -> tuple[str, int]:
    """Send a claimed chat delivery. Returns (status, item count); raises SendError."""
    # A delivery without a space (NULL) finds no channel: ChatChannel.space is required.
    channel = ChatChannel.objects.filter(space_id=delivery.space_id).first()  # type: ignore[misc]
    if channel is None:
        raise SendError(
            "The space has no chat channel any more; a space admin can set one on its Chat "
            "page, then send again.",
            permanent=True,
        )
    message, count = _message_for(delivery)
    if message is None:
        return Delivery.Status.EMPTY, 0
    try:
        _post(channel, message)
    except SendError as exc:
        exc.count = count
        raise
    return Delivery.Status.SENT, count


def _post(channel: ChatChannel, message: messages.Message) -> None:
    try:
        secret = unseal(channel.sealed_secret)
    except InvalidInput:
        raise SendError(
            "The stored webhook or token can no longer be read (the server's secret key "
            "changed): a space admin should enter it again on the space's Chat page.",
            permanent=True,
        ) from None
    render = messages.slack_payload if channel.is_slack else messages.teams_payload
    body = render(message)
    if channel.platform == ChatChannel.Platform.SLACK_BOT:
        post(
            platform=channel.platform,
            url=f"{settings.CHAT_SLACK_API_URL}/chat.postMessage",
            body={"channel": channel.slack_channel, **body},
            token=secret,
        )
    else:
        post(platform=channel.platform, url=secret, body=body)


def space_deliveries(*, space: Space, limit: int = 50) -> list[Delivery]:
    """The space's recent chat deliveries, newest first (one query)."""
    return list(
        Delivery.objects.filter(space=space, channel=Delivery.Channel.CHAT)
        .select_related("user")
        .order_by("-created_at")[:limit]
    )


def delivery_send_again(*, space: Space, actor, delivery_id: int) -> bool:
    """A space admin's "Send again" of a failed chat delivery of their space (once: a second
    click finds it pending and changes nothing)."""
    _require_admin(space, actor)
    if not Delivery.objects.filter(
        pk=delivery_id, space=space, channel=Delivery.Channel.CHAT
    ).exists():
        raise NotFound("No such delivery in this space.")
    ids = reminder_services.delivery_retry(ids=[delivery_id])
    if ids:
        from apps.reminders.tasks import send_delivery

        transaction.on_commit(lambda: send_delivery.delay(delivery_id))
    return bool(ids)

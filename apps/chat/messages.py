"""Chat messages: one platform-neutral `Message`, rendered as Slack Block Kit JSON (incoming
webhook or chat.postMessage) or as a Teams Adaptive Card for a Workflows webhook.

Slack gets interactive buttons whose value is the same signed single-use token as the email's
link; Teams gets the email's signed links as Action.OpenUrl buttons (a workflow webhook cannot
call back)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.core.links import absolute_url
from apps.reminders import tokens
from apps.reminders.selectors import SpaceGroup

# Slack allows 50 blocks a message (each item takes two); Teams cards have a ~28 KB limit.
MAX_ITEMS = 20
STATE_EMOJI = {"suspect": ":warning:", "stale": ":red_circle:", "due": ":large_yellow_circle:"}


@dataclass
class Action:
    label: str
    url: str
    # Slack: the button's action_id and its value (a signed token) when it calls back.
    action_id: str = ""
    value: str = ""
    primary: bool = False


@dataclass
class Line:
    """One record (or one thing to look at) in a message."""

    title: str
    url: str
    state: str = ""
    detail: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


@dataclass
class Message:
    heading: str
    intro: str
    lines: list[Line] = field(default_factory=list)
    more: str = ""
    footer: str = ""
    footer_links: list[tuple[str, str]] = field(default_factory=list)
    slack_mention: str = ""
    # Who it is for, when not mentioned (Slack without a member ID, Teams).
    greeting: str = ""


# --- building ---------------------------------------------------------------------------------


def _detail(item) -> list[str]:
    lines = []
    if item.overdue_days:
        lines.append(
            f"Review overdue by {item.overdue_days} day{'s' if item.overdue_days != 1 else ''}"
        )
    for reason in item.reasons[:3]:
        lines.append(str(reason.text))
    return lines


def _one_click(label: str, *, name: str, purpose: str, record, user, primary=False) -> Action:
    """A button carrying the email's signed single-use token: Slack posts the token back, Teams
    opens the link."""
    token = tokens.make_link_token(action=purpose, record_id=record.pk, user_id=user.pk)
    return Action(
        label,
        absolute_url(reverse(f"reminders:{name}", args=[token])),
        action_id=name,
        value=token,
        primary=primary,
    )


def _record_line(item, *, user, one_click: bool) -> Line:
    record = item.record
    actions: list[Action] = []
    if one_click:
        actions.append(
            _one_click(
                "Still true",
                name="still_true",
                purpose="verify",
                record=record,
                user=user,
                primary=True,
            )
        )
    actions.append(
        Action("Needs change", absolute_url(record.get_edit_url()), action_id="needs_change")
    )
    if one_click and record.owner_user_id == user.pk:
        actions.append(
            _one_click("Not mine", name="not_mine", purpose="not_mine", record=record, user=user)
        )
    return Line(
        title=f"{record.key} {record.title}",
        url=absolute_url(record.get_absolute_url()),
        state=item.state,
        detail=_detail(item),
        actions=actions,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def digest(*, user, group: SpaceGroup, period: str, slack_user_id: str = "") -> Message:
    """The owner's digest for one space, with "Still true", "Needs change" and "Not mine"."""
    items = group.items[:MAX_ITEMS]
    more = group.total - len(items)
    expires = timezone.localdate() + dt.timedelta(days=settings.REMINDERS_LINK_MAX_AGE_DAYS)
    queue = absolute_url(reverse("reminders:review_queue"))
    return Message(
        heading=f"{_plural(group.total, 'record')} to review in {group.space.name}",
        intro=(
            "Records you own need a look, most urgent first. "
            "If one still holds, press Still true; if it changed, Needs change opens it."
        ),
        greeting=user.display_name,
        lines=[_record_line(item, user=user, one_click=True) for item in items],
        more=f"And {more} more in your review queue." if more > 0 else "",
        footer=(
            f"{'Weekly' if '-W' in period else 'Daily'} digest · each button works once, "
            f"until {expires:%-d %b %Y}"
        ),
        footer_links=[
            ("Your review queue", queue),
            ("Notification settings", absolute_url(reverse("reminders:settings"))),
        ],
        slack_mention=slack_user_id,
    )


def escalation(*, group: SpaceGroup, period: str) -> Message:
    """The weekly list, for the space's admins, of records stale too long or without owner."""
    items = group.items[:MAX_ITEMS]
    more = group.total - len(items)
    lines = []
    for item in items:
        line = _record_line(item, user=None, one_click=False)
        if item.orphaned:
            line.detail.insert(0, "No owner: assign one from the review queue")
        lines.append(line)
    return Message(
        heading=f"{_plural(group.total, 'record')} escalated in {group.space.name}",
        intro=(
            f"For the admins of {group.space.name}: records stale for too long, or without "
            "an owner. Assign them or follow up with their owners."
        ),
        lines=lines,
        more=f"And {more} more on the space's health page." if more > 0 else "",
        footer=f"Weekly escalation ({period})",
        footer_links=[
            ("Review queue", absolute_url(reverse("reminders:review_queue")) + "#orphans"),
            (
                "Space health",
                absolute_url(reverse("reminders:space_health", args=[group.space.slug])),
            ),
        ],
    )


def notice(payload: dict) -> Message:
    """A one-off message (proposal, agent escalation) from `services.notify`'s stored payload."""
    return Message(
        heading=payload.get("title", ""),
        intro=payload.get("text", ""),
        lines=[
            Line(
                title=line.get("title", ""), url=line.get("url", ""), detail=line.get("detail", [])
            )
            for line in payload.get("lines", [])
        ],
        footer_links=[(label, url) for label, url in payload.get("links", [])],
        slack_mention=payload.get("slack_user_id", ""),
    )


# --- Slack Block Kit ----------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    # "|" and ">" end a Slack link; the label is escaped, the URL is ours.
    return f"<{url}|{_mrkdwn(label).replace('|', '¦')}>"


def _plain(text: str, limit: int) -> dict:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def slack_payload(message: Message) -> dict:
    """Block Kit JSON for an incoming webhook or chat.postMessage (add "channel" for the latter)."""
    intro = _mrkdwn(message.intro)
    if message.slack_mention:
        intro = f"<@{message.slack_mention}> {intro}"
    elif message.greeting:
        intro = f"{_mrkdwn(message.greeting)}: {intro}"
    blocks: list[dict] = [
        {"type": "header", "text": _plain(message.heading, 150)},
        {"type": "section", "text": {"type": "mrkdwn", "text": intro[:3000]}},
    ]
    for index, line in enumerate(message.lines):
        head = f"*{_link(line.url, line.title)}*" if line.url else f"*{_mrkdwn(line.title)}*"
        if line.state:
            head = f"{STATE_EMOJI.get(line.state, '')} {head} · _{line.state}_".strip()
        text = "\n".join([head, *(_mrkdwn(d) for d in line.detail)])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        if line.actions:
            elements = []
            for action in line.actions:
                button = {
                    "type": "button",
                    "text": _plain(action.label, 75),
                    "action_id": f"{action.action_id or 'open'}:{index}",
                }
                if action.value:
                    button["value"] = action.value  # the signed single-use token
                else:
                    button["url"] = action.url
                if action.primary:
                    button["style"] = "primary"
                elements.append(button)
            blocks.append({"type": "actions", "block_id": f"line-{index}", "elements": elements})
    if message.more:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": message.more}})
    footer = [_mrkdwn(message.footer)] if message.footer else []
    footer += [_link(url, label) for label, url in message.footer_links]
    if footer:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(footer)}]}
        )
    # "text" is the notification and screen-reader fallback Slack asks for alongside blocks.
    return {"text": message.heading, "blocks": blocks}


# --- Teams Adaptive Card ------------------------------------------------------------------------


def _card_text(text: str) -> str:
    # Adaptive Card TextBlocks render a Markdown subset: keep a title's brackets literal.
    return text.replace("[", "\\[").replace("]", "\\]")


def _text_block(text: str, **style) -> dict:
    return {"type": "TextBlock", "text": text, **style, "wrap": True}


def _teams_line(line: Line) -> dict:
    title = f"[{_card_text(line.title)}]({line.url})" if line.url else _card_text(line.title)
    items: list[dict] = [_text_block(f"**{title}**" + (f" · {line.state}" if line.state else ""))]
    if line.detail:
        items.append(
            _text_block(
                "\n\n".join(_card_text(d) for d in line.detail), isSubtle=True, spacing="None"
            )
        )
    if line.actions:
        items.append(
            {
                "type": "ActionSet",
                "actions": [
                    {
                        "type": "Action.OpenUrl",
                        "title": action.label,
                        "url": action.url,
                        **({"style": "positive"} if action.primary else {}),
                    }
                    for action in line.actions
                ],
            }
        )
    return {"type": "Container", "separator": True, "items": items}


def teams_payload(message: Message) -> dict:
    """The message a Teams "Post to a channel when a webhook request is received" workflow
    expects: an Adaptive Card (1.4) as an attachment."""
    intro = f"{message.greeting}: {message.intro}" if message.greeting else message.intro
    body: list[dict] = [
        _text_block(_card_text(message.heading), size="Medium", weight="Bolder"),
        _text_block(_card_text(intro)),
        *(_teams_line(line) for line in message.lines),
    ]
    if message.more:
        body.append(_text_block(message.more))
    if message.footer:
        body.append(_text_block(message.footer, isSubtle=True, size="Small"))
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in message.footer_links
        ],
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }

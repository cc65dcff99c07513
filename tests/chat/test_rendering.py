"""The documentation's pictures of a chat message: the real Block Kit JSON and Adaptive Card
that a digest posts (captured by the local sink) drawn as simple HTML mock-ups in headless
Chromium, clearly labelled as renderings; and the space's Chat page with a failed delivery."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.chat import services as chat
from apps.reminders import services as reminders
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.e2e.conftest import login
from tests.factories import make_record

# Slack shows these shortcodes as emoji; the mock-up draws them with characters any font has.
EMOJI = {
    ":warning:": '<span style="color:#e8912d">▲</span>',
    ":red_circle:": '<span style="color:#e01e5a">●</span>',
    ":large_yellow_circle:": '<span style="color:#ecb22e">●</span>',
}
STYLE = """
body { font: 15px/1.46 -apple-system, 'Segoe UI', Lato, Helvetica, Arial, sans-serif;
       background: #f8f8f8; margin: 0; padding: 24px; color: #1d1c1d; }
.label { font-size: 12px; color: #616061; border: 1px dashed #bbb; padding: 6px 10px;
         margin-bottom: 14px; background: #fff; display: inline-block; }
.msg { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 16px 20px;
       max-width: 720px; display: flex; gap: 12px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #3b5bdb; color: #fff;
          font-weight: 700; display: flex; align-items: center; justify-content: center; }
.who b { margin-right: 6px; } .app { font-size: 10px; background: #e8e8e8; padding: 1px 4px;
          border-radius: 3px; color: #616061; } .time { color: #616061; font-size: 12px; }
.header { font-size: 18px; font-weight: 900; margin: 6px 0; }
.section { margin: 6px 0; white-space: pre-wrap; }
.actions { display: flex; gap: 8px; margin: 6px 0 12px; }
.btn { border: 1px solid #bbb; border-radius: 4px; padding: 3px 12px; font-weight: 700;
       font-size: 13px; background: #fff; }
.btn.primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.context { font-size: 12px; color: #616061; margin-top: 8px; }
a { color: #1264a3; text-decoration: none; } .mention { background: #e8f5fa; color: #1264a3; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 16px;
        max-width: 720px; border-top: 4px solid #6264a7;
        font-family: 'Segoe UI', Helvetica, Arial, sans-serif; }
.tb { margin: 4px 0; } .tb.medium { font-size: 18px; } .tb.bolder { font-weight: 700; }
.tb.subtle { color: #616161; } .tb.small { font-size: 12px; }
.container { border-top: 1px solid #e1e1e1; padding-top: 8px; margin-top: 8px; }
.ac-actions { display: flex; gap: 8px; margin: 6px 0; }
.ac-btn { border: 1px solid #6264a7; color: #6264a7; border-radius: 4px; padding: 4px 12px;
          font-weight: 600; font-size: 13px; }
.ac-btn.positive { background: #6264a7; color: #fff; }
"""


def _mrkdwn(text: str) -> str:
    """Slack mrkdwn (already &-escaped as Slack requires) to HTML, enough for our messages."""
    out = re.sub(r"<@(U\w+)>", r'<span class="mention">@owner</span>', text)
    out = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r'<a href="\1">\2</a>', out)
    out = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w/])_([^_\n]+)_(?!\w)", r"<i>\1</i>", out)
    for code, emoji in EMOJI.items():
        out = out.replace(code, emoji)
    return out


def render_slack(payload: dict) -> str:
    parts = []
    for block in payload["blocks"]:
        kind = block["type"]
        if kind == "header":
            parts.append(f'<div class="header">{html.escape(block["text"]["text"])}</div>')
        elif kind == "section":
            parts.append(f'<div class="section">{_mrkdwn(block["text"]["text"])}</div>')
        elif kind == "actions":
            buttons = "".join(
                f'<span class="btn {e.get("style", "")}">{html.escape(e["text"]["text"])}</span>'
                for e in block["elements"]
            )
            parts.append(f'<div class="actions">{buttons}</div>')
        elif kind == "context":
            text = " ".join(_mrkdwn(e["text"]) for e in block["elements"])
            parts.append(f'<div class="context">{text}</div>')
        else:
            raise AssertionError(f"unrendered block type {kind}")
    return (
        f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style>"
        "<div class='label'>Rendering of the Block Kit JSON contextkb posted to the Slack "
        "webhook (an HTML mock-up made by tests/chat/test_rendering.py, not a Slack "
        "screenshot)</div><div class='msg'><div class='avatar'>ck</div><div>"
        "<div class='who'><b>contextkb</b><span class='app'>APP</span> "
        "<span class='time'>7:00 AM</span></div>" + "".join(parts) + "</div></div>"
    )


def _card_md(text: str) -> str:
    out = html.escape(text.replace("\\[", "\x00").replace("\\]", "\x01"))
    out = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return out.replace("\x00", "[").replace("\x01", "]").replace("\n\n", "<br>")


def _card_element(element: dict) -> str:
    kind = element["type"]
    if kind == "TextBlock":
        classes = " ".join(
            c
            for c in (
                "medium" if element.get("size") == "Medium" else "",
                "small" if element.get("size") == "Small" else "",
                "bolder" if element.get("weight") == "Bolder" else "",
                "subtle" if element.get("isSubtle") else "",
            )
            if c
        )
        return f'<div class="tb {classes}">{_card_md(element["text"])}</div>'
    if kind == "Container":
        inner = "".join(_card_element(e) for e in element["items"])
        return f'<div class="container">{inner}</div>'
    if kind == "ActionSet":
        return _card_actions(element["actions"])
    raise AssertionError(f"unrendered element {kind}")


def _card_actions(actions: list[dict]) -> str:
    buttons = "".join(
        f'<span class="ac-btn {a.get("style", "")}">{html.escape(a["title"])}</span>'
        for a in actions
    )
    return f'<div class="ac-actions">{buttons}</div>'


def render_teams(payload: dict) -> str:
    card = payload["attachments"][0]["content"]
    body = "".join(_card_element(e) for e in card["body"]) + _card_actions(card["actions"])
    return (
        f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style>"
        "<div class='label'>Rendering of the Adaptive Card contextkb posted to the Teams "
        "workflow webhook (an HTML mock-up made by tests/chat/test_rendering.py, not a Teams "
        f"screenshot)</div><div class='card'>{body}</div>"
    )


@pytest.fixture
def digest(sink, space, owner, admin_user):
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        anchors=["services/billing/**"],
    )
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="constraint",
        title="Refunds settle within 5 business days",
        now=timezone.now() - dt.timedelta(days=175),
    )
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="decision",
        title="Use Stripe for card payments",
        impact="high",
        reversibility="one_way",
        now=timezone.now() - dt.timedelta(days=160),
    )
    reminders.drift_report(
        repository="acme/shop",
        commit="9f2c1e0",
        changed_paths=["services/billing/logging.py"],
        source="api",
    )
    reminders.sweep(full=True)
    chat.preference_set(user=owner, notify_by="chat", slack_user_id="U0OWNER1")
    return sink


def _send(space, admin_user, platform: str, url: str) -> None:
    chat.channel_save(space=space, actor=admin_user, platform=platform, webhook_url=url)
    Delivery.objects.all().delete()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    [delivery] = Delivery.objects.filter(channel="chat")
    assert tasks.send_delivery.run(delivery.pk) == "sent"


def test_a_chat_digest_rendered_from_the_real_payload(
    digest, space, admin_user, browser, shoot, transactional_db
):
    sink = digest
    _send(space, admin_user, "slack_webhook", f"{sink.url}/services/T0/B0/x")
    _send(space, admin_user, "teams", f"{sink.url}/workflows/x?sig=y")
    slack = sink.accepted("/services/T0/B0/x")[0]["json"]
    teams = sink.accepted("/workflows/x?sig=y")[0]["json"]

    page = browser.new_page(viewport={"width": 820, "height": 600})
    page.set_content(render_slack(slack))
    text = page.inner_text("body")
    assert "3 records to review in Payments" in text
    assert "@owner" in text and "suspect" in text
    assert page.locator(".btn.primary").count() == 3
    assert page.locator(".btn", has_text="Not mine").count() == 3
    shoot(page, "chat-slack-digest")

    page.set_content(render_teams(teams))
    assert "3 records to review in Payments" in page.inner_text("body")
    assert page.locator(".ac-btn.positive").count() == 3
    shoot(page, "chat-teams-digest")
    page.close()


def test_the_chat_page_shows_a_failed_delivery_with_send_again(
    sink, space, owner, admin_user, new_page, shoot, transactional_db
):
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never log card numbers",
        now=timezone.now() - dt.timedelta(days=75),
    )
    reminders.sweep(full=True)
    chat.preference_set(user=owner, notify_by="chat")
    chat.channel_save(
        space=space,
        actor=admin_user,
        platform="slack_webhook",
        webhook_url=f"{sink.url}/services/T0/B0/revokedwxyz",
    )
    sink.script["/services/T0/B0/revokedwxyz"] = [(404, "no_service")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    [delivery] = Delivery.objects.all()
    assert tasks.send_delivery.run(delivery.pk) == "gave up"

    page = new_page(width=1366, height=900)
    login(page, admin_user)
    page.goto("/s/payments/chat/")
    row = page.locator("tr.delivery-gave_up")
    assert "Slack refused the message (HTTP 404: no_service)" in row.inner_text()
    assert row.get_by_role("button", name="Send again").is_visible()
    assert "revokedwxyz" not in page.content()
    shoot(page, "chat-deliveries")
    row.get_by_role("button", name="Send again").click()
    page.wait_for_selector("text=Queued to send again.")
    assert Delivery.objects.get().status == "pending"

"""The editor and the space home by keyboard and on a phone, and the editor's messages where the
user is looking: focus starts in Title, the tag chips are one Tab stop with arrow keys inside,
Enter applies a filter, the phone's space home shows records on the first screen, the body's
limit and the first error are on screen, and links in a record body's lists and tables are
underlined."""

from __future__ import annotations

import re

import pytest

from apps.records.models import Record
from tests.e2e.conftest import login
from tests.factories import make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ACTIVE = "(() => { const e = document.activeElement; return e.name || e.id || e.textContent; })()"


def test_a_new_record_by_keyboard_title_first_and_the_tag_chips_one_stop(
    new_page, shoot, space, owner
):
    tags = [f"topic-{n:02d}" for n in range(19)]
    make_record(space=space, actor=owner, title="Tagged", tags=tags)
    page = new_page()
    login(page, owner)
    page.goto("/s/payments/new/?kind=decision")
    # Focus starts in Title: no Tabs through the navigation and the kind picker.
    assert page.evaluate("document.activeElement.id") == "id_title"
    page.keyboard.type("Retries use exponential backoff")

    # From Title to Change note, the 19 chips are one stop.
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(ACTIVE))
        if stops[-1] == "message":
            break
    assert stops[-1] == "message", stops
    chip_stops = [s for s in stops if s in tags]
    assert chip_stops == ["topic-00"], stops
    # 19 stops, 18 of them fields (Chromium's date inputs are four each); a stop per chip made 37.
    assert len(stops) <= 19, stops

    # Inside the chips: arrow keys, Home and End move; Enter and Space add; focus stays there.
    page.get_by_label("Tags").focus()
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "topic-00"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(ACTIVE) == "topic-02"
    page.keyboard.press("Enter")
    assert page.evaluate(ACTIVE) == "topic-02"
    page.keyboard.press("End")
    assert page.evaluate(ACTIVE) == "topic-18"
    page.keyboard.press(" ")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowLeft")  # wraps round to the last
    assert page.evaluate(ACTIVE) == "topic-18"
    assert page.get_by_label("Tags").input_value() == "topic-02, topic-18"
    # Tab leaves the group; Shift+Tab comes back to the chip last used.
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "anchors"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(ACTIVE) == "topic-18"
    toolbar = page.get_by_role("toolbar", name=re.compile("Used in Payments"))
    assert toolbar.locator("button[tabindex='0']").count() == 1
    shoot(page, "editor-tag-chips", full_page=False)
    assert page.console_errors == []


def test_enter_on_a_filter_select_applies_the_filter(new_page, space, owner):
    make_record(space=space, actor=owner, title="Ledger in PostgreSQL")
    make_record(space=space, actor=owner, kind="guardrail", title="Agents stay out of prod")
    page = new_page()
    login(page, owner)
    page.goto("/s/payments/")
    # Arrow keys step through a closed select without reloading the page; Enter applies it.
    page.get_by_label("Kind").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)
    assert "kind=" not in page.url
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"kind=decision"))
    assert page.locator("table.records-table tbody tr").count() == 1
    page.get_by_label("Archived only").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"archived=1"))
    assert page.console_errors == []


def test_the_phone_space_home_shows_records_on_the_first_screen(new_page, shoot, space, owner):
    for n in range(6):
        make_record(
            space=space,
            actor=owner,
            title=f"Payouts rule {n}",
            summary="Each payout is a task keyed by payout id.",
            tags=["payouts"],
            owner_user=owner,
        )
    page = new_page(width=390, height=844)
    login(page, owner)
    page.goto("/s/payments/")
    # The filters are folded behind a button; the first record is on the first screen.
    toggle = page.get_by_role("button", name="Filters")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert page.get_by_label("Kind").is_hidden()
    first = page.locator("table.records-table tbody tr").first.bounding_box()
    assert first is not None and first["y"] + first["height"] <= 844, first
    # Every page of the site and of the space is in its menu, none cut off at the screen's edge.
    for link in page.locator(".spacenav a, .mainnav a").all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (
            link.inner_text(),
            box,
        )
    # The button opens them and moves focus into them; the search box stays in view.
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.get_by_label("Kind").is_visible()
    assert page.evaluate("document.activeElement.name") == "kind"
    shoot(page, "phone-filters", full_page=False)
    page.get_by_label("Kind").select_option("decision")
    page.wait_for_url(re.compile(r"kind=decision"))
    # With a filter set, the folded button says so.
    assert page.get_by_role("button", name="Filters (1 set)").is_visible()
    assert page.get_by_label("Search").is_visible()
    assert page.console_errors == []


def test_editor_messages_are_on_screen_and_secrets_stay_hidden(new_page, space, owner):
    page = new_page(width=1366, height=800)
    login(page, owner)
    page.goto("/s/payments/new/?kind=decision")
    page.get_by_label("Title").fill("A long record")
    counter = page.locator("#body-count")
    assert counter.is_hidden()  # far from the limit: no counter
    body = page.locator("textarea[name=body]")
    body.fill("y" * 199_000)
    assert counter.inner_text() == "199,000 / 200,000 characters"
    body.fill("y" * 200_250)
    assert counter.inner_text() == "200,250 / 200,000 characters · 250 over the limit"
    page.get_by_role("button", name="Create decision").click()
    page.wait_for_load_state()
    # The page comes back with the message under the body on screen and the body focused.
    error = page.locator("#body_error")
    assert "250 over" in error.inner_text()
    box = error.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800, box
    assert page.evaluate("document.activeElement.name") == "body"
    assert "250 over the limit" in counter.inner_text()
    assert not Record.objects.exists()

    # A refused credential is not shown back in the preview.
    token = "ghp_" + "R2d2C3poBb8Yoda5Luke7Leia9Han1Chewie0"
    body.fill(f"## Decision\n\nDeploy with {token}.")
    page.get_by_role("button", name="Create decision").click()
    page.wait_for_load_state()
    assert "looks like it contains a credential" in page.locator(".form-error").inner_text()
    preview = page.locator("#preview")
    preview.locator("h2", has_text="Decision").wait_for()
    assert token[4:] not in preview.inner_text()
    assert "Hidden in this preview" in preview.inner_text()
    assert not Record.objects.exists()


def test_links_in_lists_and_tables_of_a_record_body_are_underlined(new_page, space, owner):
    record = make_record(
        space=space,
        actor=owner,
        title="Where things live",
        body=(
            "See [the runbook](https://example.com/run).\n\n"
            "- [Dashboards](https://example.com/dash)\n\n"
            "| What | Where |\n|---|---|\n| Logs | [Kibana](https://example.com/logs) |\n"
        ),
    )
    page = new_page()
    login(page, owner)
    page.goto(f"/s/payments/{record.key}/")
    underline = "el => getComputedStyle(el).textDecorationLine"
    for name in ("the runbook", "Dashboards", "Kibana"):
        link = page.locator(".markdown").get_by_role("link", name=name)
        assert link.evaluate(underline) == "underline", name
    # The editor's preview shows them the same way.
    page.goto(f"/s/payments/{record.key}/edit/")
    link = page.locator("#preview").get_by_role("link", name="Kibana")
    link.wait_for()
    assert link.evaluate(underline) == "underline"

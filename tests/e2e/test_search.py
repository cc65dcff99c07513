"""Searching the demo space in the browser with everyday phrasing: results ranked by relevance,
matched words marked, and focus on the results heading so the first result is one Tab away."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from apps.records.management.commands.seed_demo import DEMO_PASSWORD
from apps.records.models import Record
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _search(page, text: str) -> None:
    box = page.get_by_role("searchbox", name="Search")
    box.fill(text)
    box.press("Enter")
    page.wait_for_url(re.compile(r"\?q="))


def _titles(page) -> list[str]:
    return page.locator("table.records-table tbody .row-title").all_inner_texts()


def test_everyday_phrasing_finds_the_demo_records_by_relevance(new_page, shoot):
    call_command("seed_demo")
    ana = Record.objects.get(title__startswith="Payouts run").owner_user
    page = new_page()
    login(page, ana, DEMO_PASSWORD)
    page.goto("/s/payments/")
    # The space opens in date order.
    assert page.get_by_label("Sort").input_value() == ""
    assert page.get_by_label("Sort").locator("option:checked").inner_text() == "Recently updated"

    _search(page, "how do we retry failed payments")

    titles = _titles(page)
    # Not every word is needed: the records about retrying failures are found, best first.
    assert titles[0] == "Retry failed webhooks with exponential backoff"
    assert "Payouts run as idempotent background jobs" in titles
    assert "PostgreSQL is the system of record for the ledger" not in titles
    # Ranked by relevance, not by date, although the page before was in date order.
    assert page.get_by_label("Sort").locator("option:checked").inner_text() == "Best match"
    assert "sort=&" in page.url or page.url.endswith("sort=")
    # The words found are marked.
    first = page.locator("table.records-table tbody tr").first
    assert first.locator(".row-title mark").all_inner_texts() == ["Retry", "failed"]
    shoot(page, "search", full_page=False)

    # Focus is on the results heading: past the table's sort headers, the first result is a
    # few Tabs away (it was 36, through the header, the navigation and the filter form).
    heading = page.get_by_role("heading", name=re.compile(r"records? matching"))
    assert heading.evaluate("el => el === document.activeElement")
    headers = page.locator("table.records-table thead a").count()
    for _ in range(headers + 1):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('tbody tr') !== null")
    assert (
        page.evaluate("document.activeElement.textContent")
        == first.locator("td.key a").inner_text()
    )

    _search(page, "what happens when a webhook delivery fails")
    titles = _titles(page)
    assert set(titles[:2]) == {
        "Retry failed webhooks with exponential backoff",
        "Deliver webhooks through a durable outbox table",
    }
    assert page.get_by_role("heading", name=re.compile(r"records? matching")).evaluate(
        "el => el === document.activeElement"
    )


def test_a_search_that_finds_nothing_says_so_with_focus_on_the_message(new_page):
    call_command("seed_demo")
    ana = Record.objects.get(title__startswith="Payouts run").owner_user
    page = new_page()
    login(page, ana, DEMO_PASSWORD)
    page.goto("/s/payments/")

    _search(page, "zebras and giraffes")

    heading = page.get_by_role("heading", name="No records match")
    assert heading.evaluate("el => el === document.activeElement")
    assert page.console_errors == []


@pytest.mark.parametrize("width", [1366, 390])
def test_searching_every_space_from_the_navigation(new_page, shoot, width):
    from tests.e2e.test_daily_use import _axe_violations

    call_command("seed_demo")
    ana = Record.objects.get(title__startswith="Payouts run").owner_user
    page = new_page(width=width, height=900 if width > 600 else 844)
    login(page, ana, DEMO_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    page.wait_for_url(re.compile(r"/search/$"))

    _search(page, "what happens when a webhook delivery fails")

    assert set(_titles(page)[:2]) == {
        "Retry failed webhooks with exponential backoff",
        "Deliver webhooks through a durable outbox table",
    }
    heading = page.get_by_role("heading", name=re.compile(r"records? matching"))
    assert heading.evaluate("el => el === document.activeElement")
    page.keyboard.press("Tab")  # no sort headers here: the first result is the next stop
    assert page.evaluate("document.activeElement.closest('tbody tr') !== null")
    # Nothing spills sideways on a phone, and axe finds nothing to fix.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert _axe_violations(page) == []
    if width > 600:
        shoot(page, "search-all-spaces", full_page=False)

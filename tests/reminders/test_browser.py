"""The health dashboard and the review queue in headless Chromium: the chart fills its card on a
wide screen and on a phone, the strict CSP is never violated, one click verifies a record."""

import datetime as dt
import random

import pytest
from django.utils import timezone

from apps.accounts.models import Membership
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders.models import HealthSnapshot
from tests.e2e import conftest as e2e
from tests.factories import make_record

# The end-to-end fixtures (system Chromium, console-error capture), shared rather than copied.
browser = e2e.browser
new_page = e2e.new_page
login = e2e.login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dashboard(space, owner, teammate):
    Membership.objects.filter(user=owner, space=space).update(role="admin")
    old = timezone.now() - dt.timedelta(days=100)
    stale = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Agents never run migrations against production",
        now=old,
    )
    make_record(space=space, actor=owner, owner_user=teammate, kind="constraint", now=old)
    make_record(space=space, actor=owner, owner_user=owner, title="Fresh decision")
    make_record(space=space, actor=owner, title="Nobody's record")
    reminders.sweep(full=True)
    rng = random.Random(4)
    today = timezone.localdate()
    HealthSnapshot.objects.bulk_create(
        HealthSnapshot(
            space=space,
            day=today - dt.timedelta(days=83 - d),
            fresh=10 + d // 8,
            due=rng.randint(0, 3),
            stale=max(0, 14 - d // 6),
            suspect=rng.randint(1, 4),
        )
        for d in range(84)
    )
    return stale


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_trend_chart_fills_its_card_with_readable_axes(new_page, space, owner, dashboard, width):
    page = new_page(width=width, height=900)
    login(page, owner)
    page.goto(f"/spaces/{space.slug}/health")
    card = page.locator("section[aria-labelledby=trend-h]")
    plot = card.locator(".trend-plot svg")
    plot.wait_for()
    card_box, plot_box = card.bounding_box(), plot.bounding_box()
    # The plot takes the card's width but the y labels and padding (was ~60% before).
    assert plot_box["width"] >= card_box["width"] - 110
    assert plot_box["height"] == 220
    assert card.locator(".trend-y text").all_text_contents() == ["0", "10", "20", "30"]
    labels = card.locator(".trend-x li")
    assert labels.count() == 12
    visible = [labels.nth(i).is_visible() for i in range(12)]
    assert all(visible) if width > 720 else visible == [True, False] * 6
    # Axis labels are real text at a readable size on both widths.
    size = card.locator(".trend-x li").first.evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert size >= 10
    assert (
        card.locator(".trend-legend")
        .get_by_text("Fresh or not yet verified", exact=True)
        .is_visible()
    )
    card.get_by_text("Show the numbers").click()
    assert card.locator(".trend-numbers tbody tr").count() == 12
    assert page.console_errors == []


def test_review_queue_verifies_in_one_click_and_admins_assign_orphans(
    new_page, space, owner, teammate, dashboard
):
    page = new_page()
    login(page, owner)
    page.goto("/review/")
    item = page.locator(".queue-item", has_text=dashboard.title)
    assert "Review overdue by 40 days" in item.inner_text()
    item.get_by_role("button", name="Still true").click()
    page.get_by_text(f"{dashboard.key} is verified").wait_for()
    assert Record.objects.get(pk=dashboard.pk).freshness == "fresh"

    orphan = page.locator("#orphans .queue-item", has_text="Nobody's record")
    orphan.get_by_label("New owner of").select_option(str(teammate.pk))
    orphan.get_by_role("button", name="Assign").click()
    page.get_by_text(f"is now owned by {teammate.display_name}").wait_for()
    assert Record.objects.get(title="Nobody's record").owner_user == teammate
    assert page.console_errors == []

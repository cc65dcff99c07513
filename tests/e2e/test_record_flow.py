"""A team member's day in the browser: write, preview, link, supersede, collide, restore, verify."""

from __future__ import annotations

import re

import pytest

from apps.records import services
from apps.records.models import Link, Record, Verification
from tests.e2e.conftest import login
from tests.factories import make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _seed(space, owner, teammate):
    """A few records so the space home looks like a real one."""
    intent = make_record(
        space=space,
        actor=owner,
        kind="intent",
        title="Merchants are paid out within one business day",
        summary="Fast, predictable payouts are why merchants pick us.",
        status="accepted",
        owner_user=owner,
        tags=["payouts"],
    )
    constraint = make_record(
        space=space,
        actor=owner,
        kind="constraint",
        title="Money amounts are integers in minor units",
        summary="Never store or compute money as floats.",
        status="accepted",
        owner_user=teammate,
        tags=["money", "ledger"],
        anchors=["services/ledger/**"],
    )
    guardrail = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Agents never run migrations against production",
        status="accepted",
        owner_user=owner,
        tags=["agents"],
    )
    jobs = make_record(
        space=space,
        actor=owner,
        kind="decision",
        title="Payouts run as idempotent background jobs",
        summary="Each payout is a task keyed by payout id; retries never pay twice.",
        status="accepted",
        owner_user=teammate,
        reversibility="two_way",
        impact="medium",
        tags=["payouts"],
    )
    services.record_link(source=jobs, target=intent, type="implements", actor=owner)
    services.record_link(source=constraint, target=jobs, type="constrains", actor=owner)
    services.record_link(source=guardrail, target=constraint, type="relates_to", actor=owner)
    # The intent changes: the decision implementing it becomes suspect.
    services.record_update(
        record=intent,
        actor=owner,
        expected_version=intent.version,
        changes={"summary": "Payouts land by the next business day, 95% of the time."},
    )
    Record.objects.filter(pk=guardrail.pk).update(freshness="stale")
    return constraint


def test_write_link_supersede_conflict_restore_verify(new_page, shoot, space, owner, teammate):
    constraint = _seed(space, owner, teammate)
    page = new_page()
    page.goto("/accounts/login/")
    shoot(page, "login", full_page=False)
    login(page, owner)

    shoot(page, "spaces", full_page=False)
    # Space home lists the seeded records with their freshness; filters apply on change.
    page.get_by_role("link", name="Payments").first.click()
    page.wait_for_url(re.compile(r"/s/payments/$"))
    page.get_by_label("Kind").select_option("guardrail")
    page.wait_for_url(re.compile(r"kind=guardrail"))
    assert page.locator("table.records-table tbody tr").count() == 1
    page.get_by_role("link", name="Clear").click()
    page.wait_for_url(re.compile(r"/s/payments/$"))
    assert page.locator("table.records-table tbody tr").count() == 4
    assert page.locator(".badge.fresh-suspect").count() >= 1

    # Create a decision from its template; the body starts with the decision skeleton.
    page.locator("details.dropdown summary").click()
    page.get_by_role("link", name="Decision").click()
    body = page.locator("textarea[name=body]")
    assert body.input_value().startswith("## Context")
    page.get_by_label("Title").fill("Use PostgreSQL for the ledger")
    page.get_by_label("Summary").fill("One relational database with serialisable transactions.")
    body.fill(
        "## Context\n\nLedger entries must never be lost.\n\n## Decision\n\n"
        "Use **PostgreSQL** with SERIALIZABLE transactions.\n\n"
        "## Consequences\n\n- One primary for writes\n- No eventual consistency in balances\n\n"
        "## Alternatives\n\nDynamoDB, an event store.\n\n<script>alert(1)</script>"
    )
    page.get_by_label("Tags").fill("ledger, database")
    page.get_by_label("Anchors").fill("services/ledger/**")
    page.get_by_label("Status").select_option("proposed")
    page.get_by_label("Reversibility").select_option("one_way")
    page.get_by_label("Impact").select_option("high")
    # The live preview renders the markdown server-side, sanitised.
    preview = page.locator("#preview")
    preview.locator("strong", has_text="PostgreSQL").wait_for()
    assert preview.locator("h2").all_inner_texts() == [
        "Context",
        "Decision",
        "Consequences",
        "Alternatives",
    ]
    assert preview.locator("script").count() == 0
    shoot(page, "edit-with-preview", full_page=False)
    page.get_by_role("button", name="Create decision").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-2/$"))
    assert page.locator("h1").inner_text() == "Use PostgreSQL for the ledger"
    decision = Record.objects.get(space=space, key="DEC-2")
    assert decision.owner_user == owner and decision.tags == ["ledger", "database"]

    # Link it to the constraint with the search-as-you-type picker, from the keyboard: type,
    # Down moves into the results, Enter links the focused one.
    page.get_by_label("Link type").select_option("depends_on")
    page.locator("#link-q").press_sequentially("minor units", delay=20)
    result = page.locator("#link-results button.picker-item", has_text=constraint.key)
    result.wait_for()
    page.locator("#link-q").press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == constraint.key
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.locator(".link-group", has_text="depends on").get_by_text(constraint.title).wait_for()
    assert Link.objects.filter(source=decision, target=constraint, type="depends_on").exists()

    # Supersede it with a new record; the old one points prominently to its successor.
    page.get_by_role("link", name="Supersede with new record…").click()
    page.get_by_label("Title").fill("PostgreSQL 18 with logical replicas for the ledger")
    page.get_by_role("button", name="Create successor").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-3/$"))
    # The successor kept the old record's link to the constraint (offered, checked by default).
    assert Link.objects.filter(
        source__key="DEC-3", target=constraint, type="depends_on", source__space=space
    ).exists()
    page.goto("/s/payments/DEC-2/")
    banner = page.locator(".banner-superseded")
    assert "Superseded" in banner.inner_text()
    banner.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-3/$"))
    page.goto("/s/payments/DEC-2/")
    shoot(page, "record-superseded", full_page=False)

    # Two people edit DEC-3 at once: the second save gets the conflict page, nothing is lost.
    other = new_page()
    login(other, teammate)
    page.goto("/s/payments/DEC-3/edit/")
    other.goto("/s/payments/DEC-3/edit/")
    page.get_by_label("Summary").fill("Replicas serve reads; the primary takes every write.")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-3/$"))
    other.get_by_label("Title").fill("MySQL for the ledger")
    other.get_by_role("button", name="Save changes").click()
    conflict = other.locator(".banner-conflict")
    assert "Someone else saved DEC-3" in conflict.inner_text()
    assert other.locator(".conflict-field", has_text="MySQL for the ledger").count() == 1
    shoot(other, "conflict", full_page=False)
    successor = Record.objects.get(space=space, key="DEC-3")
    assert successor.title == "PostgreSQL 18 with logical replicas for the ledger"
    assert successor.summary == "Replicas serve reads; the primary takes every write."

    # History: diff the first and the newest revision, then restore the first one.
    page.get_by_role("link", name="History").first.click()
    page.wait_for_url(re.compile(r"/history/$"))
    page.goto("/s/payments/DEC-3/history/?a=1&mode=split")  # r1 against the newest
    assert page.locator(".diff-card", has_text="Summary").count() == 1
    shoot(page, "history-diff", full_page=False)
    page.locator("button[form=restore-1]").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-3/$"))
    assert "Restored revision 1" in page.locator(".flash-stack").inner_text()
    successor.refresh_from_db()
    assert successor.summary == "One relational database with serialisable transactions."

    # Verify: "Still true" records a verification and shows it.
    page.get_by_role("button", name="✓ Still true").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-3/$"))
    assert "Verified" in page.locator(".flash-stack").inner_text()
    assert Verification.objects.filter(record=successor, outcome="still_true").count() >= 1
    shoot(page, "record", full_page=True)

    # The link graph shows the two-hop neighbourhood; nodes are links.
    page.get_by_role("link", name="Link graph").click()
    page.locator("svg.graph a.node").first.wait_for()
    keys = page.locator("svg.graph .node-key").all_text_contents()
    assert {"DEC-3", "DEC-2", constraint.key} <= set(keys)
    page.locator("svg.graph a.node", has_text="DEC-2").click()
    page.wait_for_url(re.compile(r"/s/payments/DEC-2/$"))
    page.goto(f"/s/payments/{constraint.key}/graph/")
    shoot(page, "link-graph", full_page=False)

    page.goto("/s/payments/")
    shoot(page, "space-home", full_page=False)
    # The decision implementing the changed intent says why it may be wrong, with a link to what
    # changed in it (the edit's diff in the intent's history).
    page.goto("/s/payments/DEC-1/")
    reasons = page.locator("section.reasons")
    assert "Why this may be wrong" in reasons.inner_text()
    reasons.get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/s/payments/INT-1/history/\?a=\d+&b=\d+$"))
    page.goto("/s/payments/DEC-1/")
    shoot(page, "record-suspect", full_page=False)

    # Phone width: the same pages stay usable.
    phone = new_page(width=390, height=844)
    login(phone, owner)
    phone.goto("/s/payments/")
    shoot(phone, "phone-space-home", full_page=False)
    phone.goto("/s/payments/DEC-3/")
    shoot(phone, "phone-record", full_page=False)
    phone.goto("/s/payments/DEC-3/edit/")
    phone.locator("#preview h2").first.wait_for()
    shoot(phone, "phone-edit", full_page=False)

    # No page broke the Content-Security-Policy or threw a script error.
    # (The conflict page answers 409 on purpose; Chromium logs every non-2xx document.)
    for p in (page, other, phone):
        assert [e for e in p.console_errors if "status of 409" not in e] == []


def test_health_dashboard_draws_the_trend_and_review_queue(new_page, shoot, space, owner, teammate):
    """The manager's view: shares, a 12-week trend chart, stale by owner; and the review queue."""
    import datetime as dt

    from django.utils import timezone

    from apps.accounts.models import Membership
    from apps.reminders.models import HealthSnapshot

    Membership.objects.filter(user=owner, space=space).update(role="admin")
    _seed(space, owner, teammate)
    today = timezone.now().date()
    # Eleven weeks of history for these four records (stale ones being verified), then today's
    # snapshot, which must agree with the table above the chart: 2 fresh, 1 stale, 1 suspect.
    history = []
    for week in range(11):
        fresh, due, suspect = week // 5, int(week < 4), int(week >= 8)
        history.append((fresh, due, 4 - fresh - due - suspect, suspect))
    history.append((2, 0, 1, 1))
    HealthSnapshot.objects.bulk_create(
        HealthSnapshot(
            space=space,
            day=today - dt.timedelta(weeks=11 - week),
            fresh=fresh,
            due=due,
            stale=stale,
            suspect=suspect,
        )
        for week, (fresh, due, stale, suspect) in enumerate(history)
    )
    page = new_page()
    login(page, owner)
    page.goto(f"/spaces/{space.slug}/health")
    chart = page.locator("svg").first
    chart.wait_for()
    assert page.get_by_role("heading", name="Stale and suspect records by owner").count() == 1
    assert page.get_by_role("heading", name="Last 12 weeks").count() == 1
    assert "Freshness of 4 records" in page.content()
    # The legend reads today's share and the change since the first week: 0 of 4 -> 2 of 4 fresh.
    legend = page.locator(".trend-legend").inner_text()
    # (The snapshots count never-verified records with the fresh ones, and the legend says so.)
    assert "Fresh or not yet verified 2 (50%, +50 pts)" in " ".join(legend.split())
    shoot(page, "health-dashboard", full_page=True)
    page.goto("/review/")
    shoot(page, "review-queue", full_page=False)
    assert page.console_errors == []

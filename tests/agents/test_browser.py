"""The Agents pages and a proposal review in headless Chromium (playwright, as tests/e2e do);
the screenshots are the ones docs/agents.md shows."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.agents import services
from apps.agents.models import Agent, Proposal
from apps.records.models import Record
from apps.retrieval import tasks as retrieval_tasks
from apps.retrieval import usage
from tests.e2e.conftest import login
from tests.factories import make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _api(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_register_an_agent_see_its_page_and_review_its_proposal(
    new_page, shoot, space, owner, admin_user, monkeypatch
):
    # Usage entries are written at once (the task function), so the page shows the bundles.
    monkeypatch.setattr(usage, "dispatch", retrieval_tasks.log_context_request)
    guardrail = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never retry a charge twice",
        summary="Reuse the first attempt's idempotency key.",
        body="Use the idempotency key of the first attempt.",
        anchors=["services/billing/**"],
        status="accepted",
    )
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="constraint",
        title="Amounts are integers in minor units",
        anchors=["services/billing/money.py"],
        status="accepted",
    )
    make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Sessions expire after 30 minutes",
        anchors=["services/auth/**"],
        status="accepted",
    )

    # A space admin registers the agent from the space's Agents page.
    page = new_page()
    login(page, admin_user)
    page.goto(f"/s/{space.slug}/agents/")
    page.get_by_role("link", name="Register an agent").click()
    page.get_by_label("Name").fill("Billing bot")
    page.get_by_label("Purpose").fill("Keeps the billing service's retries and refunds tidy.")
    page.get_by_label("Accountable").select_option(label=str(owner))
    page.get_by_role("textbox", name="Paths").fill("services/billing/**")
    page.get_by_label("Escalation contact (person)").select_option(label=str(owner))
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/agents/billing-bot/$"))
    page.get_by_role("button", name="Issue a token").click()
    plain = page.locator("code.new-token").inner_text().strip()
    assert plain.startswith("ckb_")
    agent = Agent.objects.get()
    assert agent.path_globs == ["services/billing/**"]
    assert [s.slug for s in agent.spaces.all()] == [space.slug]

    # The agent works: context for its files, a gap, one call outside its paths, proposals.
    api = _api(plain)
    assert api.get("/api/v1/context/", {"paths": "services/billing/charge.py"}).status_code == 200
    assert api.get("/api/v1/context/", {"q": "refund retries"}).status_code == 200
    assert (
        api.post(
            "/api/v1/context/gaps/", {"query": "How are refunds reconciled?"}, format="json"
        ).status_code
        == 201
    )
    refused = api.get("/api/v1/context/", {"paths": "services/auth/session.py"})
    assert refused.status_code == 403
    update = api.post(
        "/api/v1/proposals/",
        {
            "kind": "update",
            "key": guardrail.key,
            "base_version": guardrail.version,
            "changes": {"body": "Use the idempotency key of the first attempt for 24 hours."},
            "rationale": "The payment provider expires idempotency keys after a day.",
        },
        format="json",
    )
    assert update.status_code == 201
    assert (
        api.post(
            "/api/v1/proposals/",
            {
                "kind": "new",
                "record_kind": "constraint",
                "title": "Refunds go through the ledger",
                "summary": "Never refund outside the ledger service.",
                "anchors": ["services/billing/refunds/**"],
                "rationale": "Two refunds this week bypassed the ledger.",
            },
            format="json",
        ).status_code
        == 201
    )

    services.escalation_create(
        token=ApiToken.objects.get(agent=agent),
        guardrail_key=guardrail.key,
        action="Retry charge ch_123 with a new idempotency key",
        why="The first attempt timed out and its key expired.",
    )

    page.goto(f"/agents/{agent.slug}/")
    assert "Copy it now" not in page.locator("main").inner_text()  # shown once
    detail = page.locator("main")
    assert "2 bundles fetched" in detail.inner_text()
    # Each fetched bundle is listed by its id, linked to where it can be read back.
    assert detail.locator("a[href^='/api/v1/context/bundles/']").count() == 2
    assert "1 gap reported" in detail.inner_text()
    assert "2 proposals" in detail.inner_text()
    assert "1 refused call" in detail.inner_text()
    assert "services/auth/session.py" in detail.inner_text()
    assert "Retry charge ch_123" in detail.inner_text()
    governing = page.locator("table").first.inner_text()
    assert "Never retry a charge twice" in governing
    assert "Amounts are integers" in governing
    assert "Sessions expire" not in governing  # anchored outside its paths
    shoot(page, "agents-page")
    page.goto(f"/s/{space.slug}/agents/")
    assert "Billing bot" in page.locator("main").inner_text()
    shoot(page, "agents-list")

    # The owner reviews the change in the browser and accepts it.
    review = new_page()
    login(review, owner)
    review.goto("/proposals/")
    review.get_by_role("link", name=re.compile(f"{guardrail.key}")).click()
    assert "The payment provider expires idempotency keys" in review.locator("main").inner_text()
    shoot(review, "proposal-review")
    review.locator("form.accept-form").get_by_role("button", name="Accept").click()
    review.wait_for_load_state()
    assert "credits Billing bot and you" in review.locator("main").inner_text()
    record = Record.objects.get(pk=guardrail.pk)
    assert record.body == "Use the idempotency key of the first attempt for 24 hours."
    revision = record.revisions.order_by("-number").first()
    assert revision.author == owner and "Proposed by agent Billing bot" in revision.message
    assert Proposal.objects.filter(status="pending").count() == 1

    # A change proposed against version 1 of a record now at version 2 is a conflict: the
    # owner sees it, and accepting needs them to say they compared it with the current text.
    token = ApiToken.objects.get(agent=agent)
    stale = services.proposal_update(
        token=token,
        key=guardrail.key,
        base_version=1,
        changes={"summary": "Reuse the first attempt's key; never mint a new one."},
        rationale="Make the summary say what not to do.",
    )
    review.goto(f"/proposals/{stale.pk}/")
    assert "Conflict:" in review.locator("main").inner_text()
    # The body changed since version 1 (the accepted proposal): shown, though not proposed.
    assert "(not part of the proposal)" in review.locator("table.diff-table").inner_text()
    shoot(review, "proposal-conflict")
    review.locator("form.accept-form").get_by_role("button", name="Accept").click()
    review.wait_for_load_state()
    assert "tick the box" in review.locator("main").inner_text()
    assert Record.objects.get(pk=guardrail.pk).version == 2
    review.get_by_label(re.compile("I compared it with version 2")).check()
    review.locator("form.accept-form").get_by_role("button", name="Accept").click()
    review.wait_for_load_state()
    record = Record.objects.get(pk=guardrail.pk)
    assert record.summary == "Reuse the first attempt's key; never mint a new one."
    assert record.body == "Use the idempotency key of the first attempt for 24 hours."

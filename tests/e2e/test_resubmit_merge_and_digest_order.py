"""In the browser: Back + change + Create again keeps the new text; the conflict page merges
field by field; the review queue (the digest's list) puts suspect and stale before due."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from apps.records import services
from apps.records.models import Record
from apps.reminders import services as reminders
from tests.e2e.conftest import login
from tests.factories import make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_back_change_and_create_again_keeps_the_second_text(new_page, space, owner):
    page = new_page()
    login(page, owner)
    page.goto("/s/payments/new/?kind=guardrail")
    page.get_by_label("Title").fill("Agents never touch production")
    page.locator("textarea[name=body]").fill("First text.")
    page.get_by_role("button", name="Create guardrail").click()
    page.wait_for_url(re.compile(r"/s/payments/GRD-1/$"))

    page.go_back()
    page.wait_for_url(re.compile(r"/s/payments/new/"))
    page.locator("textarea[name=body]").fill("Second text, with an anchor.")
    page.get_by_label("Anchors").fill("deploy/**")
    page.get_by_role("button", name="Create guardrail").click()
    page.wait_for_load_state()

    # Chromium shows the form again from its cache (the same submission token) or fetches it
    # anew (a new token): either way nothing typed is lost.
    if "/new/" in page.url:
        # The same form sent again with other content: it comes back, text kept, with a message.
        assert "This form already created GRD-1" in page.content()
        assert page.locator("textarea[name=body]").input_value() == "Second text, with an anchor."
        assert page.get_by_label("Anchors").input_value() == "deploy/**"
        page.get_by_role("button", name="Create guardrail").click()
    page.wait_for_url(re.compile(r"/s/payments/GRD-2/$"))
    second = Record.objects.get(space=space, key="GRD-2")
    assert (second.body, second.anchors) == ("Second text, with an anchor.", ["deploy/**"])
    assert Record.objects.get(space=space, key="GRD-1").body == "First text."


def test_conflict_merge_keeps_their_change_to_a_field_i_never_touched(
    new_page, space, owner, teammate
):
    record = make_record(
        space=space,
        actor=owner,
        title="Ledger in PostgreSQL",
        status="accepted",
        owner_user=owner,
        deciders="Ana",
    )
    page = new_page()
    login(page, owner)
    page.goto(f"/s/payments/{record.key}/edit/")
    page.locator("textarea[name=body]").fill("My new body.")
    page.get_by_label("Title").fill("Ledger in PostgreSQL 18")
    # Meanwhile a teammate changes Deciders and the title.
    services.record_update(
        record=record,
        actor=teammate,
        expected_version=1,
        changes={"deciders": "Ana, Bo", "title": "Ledger in Postgres"},
    )
    page.get_by_role("button", name="Save changes").click()
    assert "Someone else saved" in page.locator(".banner-conflict").inner_text()
    assert "theirs is kept" in page.locator(".conflict-theirs[data-field=deciders]").text_content()
    assert "yours is used" in page.locator(".conflict-mine[data-field=body]").text_content()
    assert page.locator(".merge-pick").count() == 1  # asked about the title only
    page.get_by_label("Use your edit").check()
    page.get_by_role("button", name="Save the merged version").click()
    page.wait_for_url(re.compile(rf"/s/payments/{record.key}/$"))
    record.refresh_from_db()
    assert (record.title, record.body, record.deciders) == (
        "Ledger in PostgreSQL 18",
        "My new body.",
        "Ana, Bo",
    )


def test_review_queue_lists_suspect_and_stale_before_due(new_page, space, owner):
    now = timezone.now()
    due = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Due guardrail",
        now=now - dt.timedelta(days=55),
    )
    stale = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="intent",
        title="Stale intent",
        now=now - dt.timedelta(days=130),
    )
    suspect = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        title="Suspect decision",
        valid_until=dt.date(2026, 1, 1),
    )
    reminders.sweep(full=True)  # the states are current in the cache too, as in production
    page = new_page()
    login(page, owner)
    page.goto("/review/")
    titles = page.locator(".queue-item .queue-title").all_inner_texts()
    assert titles == [suspect.title, stale.title, due.title]
    badges = page.locator(".queue-item .badge").all_inner_texts()
    assert badges == ["Suspect", "Stale", "Due"]

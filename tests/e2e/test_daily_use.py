"""The rest of a working day in the browser: a new space and its members, what each role sees, the
editor's kind switch and double-click guard, archive, hostile markdown, a password change, and
automated accessibility checks (axe-core) on every main page at laptop and phone sizes."""

from __future__ import annotations

import re

import pytest

from apps.accounts.models import Membership, Space
from apps.records import services
from apps.records.models import Record
from tests.e2e.conftest import PASSWORD, login
from tests.factories import make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_new_space_its_members_and_what_each_role_can_do(
    new_page, shoot, owner, teammate, viewer, other_space
):
    page = new_page()
    login(page, owner)
    page.get_by_role("link", name="New space").click()
    page.get_by_label("Name").fill("Search Team")
    page.get_by_role("button", name="Create space").click()
    page.wait_for_url(re.compile(r"/s/search-team/$"))
    assert "You are its admin" in page.locator(".flash-stack").inner_text()
    # An empty space says what to do first.
    assert page.get_by_role("heading", name="No records yet").is_visible()

    # Invite two people who already have accounts: the field suggests them as you type.
    page.get_by_role("link", name="Members").click()
    suggestions = page.locator("datalist#people option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert {"teammate", "viewer"} <= set(suggestions) and "owner" not in suggestions
    add = page.locator("form", has=page.get_by_role("button", name="Add member"))
    add.get_by_label("Username or email").fill("viewer")
    add.get_by_label("Role").select_option("viewer")
    add.get_by_role("button", name="Add member").click()
    add.get_by_label("Username or email").fill(teammate.email)
    add.get_by_label("Role").select_option("editor")
    add.get_by_role("button", name="Add member").click()
    shoot(page, "members", full_page=False)
    page.get_by_label("Username or email").fill("nobody-here")
    page.get_by_role("button", name="Add member").click()
    assert "No active user called 'nobody-here'." in page.locator(".errorlist").inner_text()
    space = Space.objects.get(slug="search-team")
    roles = dict(Membership.objects.filter(space=space).values_list("user__username", "role"))
    assert roles == {"owner": "admin", "viewer": "viewer", "teammate": "editor"}

    record = make_record(space=space, actor=owner, title="Rank by BM25 first", owner_user=owner)

    # The viewer reads but has no buttons to change anything; the edit URL is a 403 page.
    reader = new_page()
    login(reader, viewer)
    reader.goto(f"/s/search-team/{record.key}/")
    assert reader.get_by_role("heading", name="Rank by BM25 first").is_visible()
    for button in ("Edit", "Archive", "Supersede with new record…", "✓ Still true"):
        assert reader.get_by_role("button", name=button).count() == 0
        assert reader.get_by_role("link", name=button).count() == 0
    assert reader.locator("#link-q").count() == 0
    response = reader.goto(f"/s/search-team/{record.key}/edit/")
    assert response.status == 403
    assert reader.get_by_role("heading", name="You can’t do that here").is_visible()
    assert reader.locator(".topbar").is_visible()  # the site's layout, not a bare error
    # A space nobody invited them to does not exist as far as they can tell.
    assert reader.goto(f"/s/{other_space.slug}/").status == 404
    assert reader.get_by_role("heading", name="Nothing here").is_visible()

    # The editor can edit but cannot manage members.
    editor = new_page()
    login(editor, teammate)
    editor.goto("/s/search-team/members/")
    assert editor.get_by_role("button", name="Add member").count() == 0
    assert editor.get_by_role("button", name="Remove").count() == 0
    editor.goto(f"/s/search-team/{record.key}/")
    assert editor.get_by_role("link", name="Edit").is_visible()
    for p in (page, reader, editor):
        assert [e for e in p.console_errors if "status of 40" not in e] == []


def test_editor_keeps_input_across_kinds_and_a_double_click_creates_one_record(
    new_page, shoot, space, owner
):
    make_record(space=space, actor=owner, title="Tagged", tags=["ledger", "money"])
    page = new_page()
    login(page, owner)
    page.goto("/s/payments/new/?kind=decision")
    page.get_by_label("Title").fill("Amounts are integer minor units")
    page.get_by_label("Summary").fill("Never floats.")
    # Picking another kind keeps what was typed and swaps the untouched body template.
    page.locator(".kind-picker label", has_text="Constraint").click()
    page.wait_for_url(re.compile(r"/s/payments/new/\?kind=constraint$"))
    assert page.get_by_label("Title").input_value() == "Amounts are integer minor units"
    assert page.get_by_label("Summary").input_value() == "Never floats."
    assert page.locator("textarea[name=body]").input_value().startswith("## Rule")
    assert page.get_by_label("Reversibility").count() == 0  # decisions only
    # Tag suggestions fill the tags field.
    page.get_by_role("button", name="Add tag money").click()
    page.get_by_role("button", name="Add tag ledger").click()
    assert page.get_by_label("Tags").input_value() == "money, ledger"
    # Bad input: the message sits next to the field and nothing is saved.
    page.get_by_label("Anchors").fill("../secrets/**")
    page.get_by_role("button", name="Create constraint").click()
    error = page.locator(".field.has-error", has=page.get_by_label("Anchors")).locator(".errorlist")
    assert "never matches" in error.inner_text()
    assert not Record.objects.filter(kind="constraint").exists()
    # Hostile markdown is inert in the live preview.
    page.get_by_label("Anchors").fill("services/ledger/**")
    body = page.locator("textarea[name=body]")
    body.fill(
        '## Rule\n\nIntegers only. <img src=x onerror="window.pwned=1">\n\n'
        "[docs](javascript:window.pwned=2) <script>window.pwned=3</script>"
    )
    page.locator("#preview h2", has_text="Rule").wait_for()
    assert page.locator("#preview script, #preview [onerror]").count() == 0
    assert page.locator('#preview a[href^="javascript"]').count() == 0
    # A double-click on Create sends it once; the server would also refuse a second copy.
    page.get_by_role("button", name="Create constraint").dblclick()
    page.wait_for_url(re.compile(r"/s/payments/CON-1/$"))
    assert Record.objects.filter(title="Amounts are integer minor units").count() == 1
    assert page.evaluate("window.pwned === undefined")
    # Saved: no draft of either kind is left behind to be offered again.
    drafts = "Object.keys(localStorage).filter(k => k.startsWith('ckb-draft:'))"
    assert page.evaluate(drafts) == []
    record = Record.objects.get(kind="constraint")
    assert record.tags == ["money", "ledger"] and record.anchors == ["services/ledger/**"]

    # Archive and bring back: it leaves the list, its history stays.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Archive").click()
    page.wait_for_load_state()
    assert page.locator(".banner-archived").is_visible()
    page.goto("/s/payments/")
    assert page.locator("table.records-table", has_text="CON-1").count() == 0
    page.get_by_label("Archived only").check()
    page.wait_for_url(re.compile(r"archived=1"))
    page.get_by_role("link", name="CON-1").click()
    page.get_by_role("button", name="Unarchive").click()
    page.wait_for_load_state()
    assert "back in the space" in page.locator(".flash-stack").inner_text()
    record.refresh_from_db()
    assert record.archived_at is None
    # (The hostile <img src=x> asks for a file that does not exist: a 404, not a script error.)
    assert [e for e in page.console_errors if "status of 404" not in e] == []


def test_password_change_in_the_browser(new_page, owner):
    page = new_page()
    login(page, owner)
    page.locator("details.usermenu summary").click()
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Old password").fill("not my password")
    page.get_by_label("New password").first.fill("a-new-long-passphrase-7")
    page.get_by_label("New password confirmation").fill("a-new-long-passphrase-7")
    page.get_by_role("button", name="Change password").click()
    assert "incorrect" in page.locator(".errorlist").first.inner_text()
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password").first.fill("a-new-long-passphrase-7")
    page.get_by_label("New password confirmation").fill("a-new-long-passphrase-7")
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("heading", name="Password changed").is_visible()
    other = new_page()
    login(other, owner, password="a-new-long-passphrase-7")


def _axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("width", [1366, 390])
def test_main_pages_pass_automated_accessibility_checks(
    new_page, space, owner, teammate, viewer, width
):
    """axe-core (the engine behind Lighthouse's accessibility audit) finds nothing on any main
    page: labels, contrast, landmarks, link text, nested controls."""
    Membership.objects.filter(user=owner, space=space).update(role="admin")
    decision = make_record(
        space=space,
        actor=owner,
        title="Ledger in PostgreSQL",
        summary="Serialisable transactions.",
        body="## Context\n\nMoney.\n\n## Decision\n\nPostgreSQL.",
        owner_user=owner,
        tags=["ledger"],
        anchors=["services/ledger/**"],
        status="accepted",
    )
    constraint = make_record(space=space, actor=owner, kind="constraint", title="Integer money")
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"title": "Ledger in PG 18"}
    )
    key = decision.key
    pages = [
        "/",
        "/s/payments/",
        "/s/payments/?q=ledger&kind=decision",
        f"/s/payments/{key}/",
        f"/s/payments/{key}/edit/",
        "/s/payments/new/?kind=guardrail",
        f"/s/payments/{key}/supersede/",
        f"/s/payments/{key}/history/",
        f"/s/payments/{key}/history/?a=1&mode=split",
        f"/s/payments/{key}/history/1/",
        f"/s/payments/{key}/graph/",
        "/s/payments/members/",
        "/spaces/new/",
        "/me/password/",
        "/s/no-such-space/",
    ]
    page = new_page(width=width, height=900 if width > 600 else 844)
    page.goto("/accounts/login/")
    assert _axe_violations(page) == []
    login(page, owner)
    found = {}
    for url in pages:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        found[url] = _axe_violations(page)
    # The 403 page, as a viewer sees it.
    reader = new_page(width=width)
    login(reader, viewer)
    reader.goto(f"/s/payments/{key}/edit/")
    found["403"] = _axe_violations(reader)
    assert {url: v for url, v in found.items() if v} == {}


def test_an_edit_survives_an_expired_session(new_page, space, owner):
    """The session ends while someone is writing (12-hour sessions, a logout in another tab): the
    save lands on the login page, and after logging in the editor offers the text back."""
    record = make_record(space=space, actor=owner, title="Retry webhooks", owner_user=owner)
    page = new_page()
    login(page, owner)
    page.goto(f"/s/payments/{record.key}/edit/")
    page.get_by_label("Summary").fill("Eight attempts over a day, then the dead-letter queue.")
    page.locator("textarea[name=body]").fill("## Decision\n\nRetry eight times with backoff.")
    page.wait_for_timeout(600)  # the draft is written a moment after typing stops
    page.context.clear_cookies(name="sessionid")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
    record.refresh_from_db()
    assert record.version == 1  # nothing was saved
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(rf"/s/payments/{record.key}/edit/$"))
    banner = page.locator("#draft-banner")
    assert "never saved" in banner.inner_text()
    assert page.get_by_label("Summary").input_value() == ""  # the saved version, until restored
    banner.get_by_role("button", name="Restore it").click()
    assert page.get_by_label("Summary").input_value().startswith("Eight attempts")
    page.locator("#preview h2", has_text="Decision").wait_for()  # the preview follows
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(rf"/s/payments/{record.key}/$"))
    record.refresh_from_db()
    assert record.body == "## Decision\n\nRetry eight times with backoff."
    assert record.version == 2
    # Saved: the draft is gone, so the editor opens clean next time.
    page.goto(f"/s/payments/{record.key}/edit/")
    assert page.locator("#draft-banner").is_hidden()
    assert page.console_errors == []


def test_keyboard_skip_link_focus_and_search_shortcut(new_page, space, owner):
    make_record(space=space, actor=owner, title="Ledger in PostgreSQL", tags=["ledger"])
    page = new_page()
    login(page, owner)
    page.goto("/s/payments/")
    # The first Tab shows the skip link; Enter jumps past the navigation to the content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # on screen when focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    # Focus is always visible: the focused control has an outline or a focus ring.
    ring = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
    )
    assert ring
    # "/" jumps to the search box from anywhere on the page.
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-q"
    page.keyboard.type("ledger")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q=ledger"))
    assert page.locator("table.records-table tbody tr").count() == 1

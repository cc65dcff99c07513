"""Every page of the web UI works under the production Content-Security-Policy: Chromium reports no
violation (an inline script, style attribute or event handler would be one) on any main page, for
a signed-in space admin, a superuser in the Django admin, and an anonymous visitor."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.models import Membership
from apps.records import services
from apps.reminders import services as reminders
from apps.retrieval import services as retrieval
from tests.e2e.conftest import browser  # noqa: F401 - shared Playwright fixture
from tests.factories import MembershipFactory, UserFactory, make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Installed before any page script: collects what the browser's CSP refused.
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ` +
                    `${e.sourceFile || location.pathname}:${e.lineNumber} ${e.sample || ''}`);
});
"""


def _signed_in_context(browser, live_server, user):  # noqa: F811
    client = Client()
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    context.add_init_script(COLLECT_VIOLATIONS)
    context.set_default_timeout(15_000)
    return context


def _visit(page, url: str, problems: dict[str, list[str]], *, status: int = 200, then=None):
    console: list[str] = []
    listener = lambda msg: console.append(msg.text) if msg.type == "error" else None  # noqa: E731
    page.on("console", listener)
    response = page.goto(url, wait_until="load")
    if response is None or response.status != status:
        problems[url] = [f"status {response.status if response else None}, expected {status}"]
    if then is not None:
        then(page)
    page.wait_for_timeout(150)  # reports are dispatched asynchronously
    found = page.evaluate("() => window.__csp") + [
        text for text in console if "Content Security Policy" in text
    ]
    page.remove_listener("console", listener)
    if found:
        problems.setdefault(url, []).extend(found)


def _type_in_body(page):
    """The edit form's live preview is an htmx round trip: its swap must pass the policy too."""
    with page.expect_response(lambda r: "/preview/" in r.url):
        page.locator("textarea[name=body]").fill("# Heading\n\n*Emphasis* and `code`.")
    page.locator("#preview h1").wait_for()


def _save_after_someone_else(page, populated):
    """Someone saves first: the conflict page (both versions side by side) is a page too."""
    record = populated["stale"]
    record.refresh_from_db()
    services.record_update(
        record=record,
        actor=populated["admin"],
        expected_version=record.version,
        changes={"summary": "Changed meanwhile"},
    )
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("heading", name="Resolve the conflict").wait_for()
    page.get_by_text("Changed meanwhile").first.wait_for()


@pytest.fixture
def populated(space, owner, teammate):
    admin = MembershipFactory(space=space, role=Membership.Role.ADMIN, user__username="boss").user
    decision = make_record(
        space=space,
        actor=owner,
        title="Use PostgreSQL for the ledger",
        summary="One database, with row locks.",
        body="## Context\n\nWe need **ACID**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nx = 1\n```",
        status="accepted",
        owner_user=owner,
        tags=["ledger"],
        anchors=["services/ledger/**"],
        reversibility="one_way",
        impact="high",
    )
    constraint = make_record(
        space=space,
        actor=owner,
        kind="constraint",
        title="Amounts in minor units",
        owner_user=owner,
    )
    stale = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Agents never touch production",
        owner_user=admin,
        now=timezone.now() - dt.timedelta(days=120),
    )
    services.record_update(
        record=decision,
        actor=teammate,
        expected_version=1,
        changes={"body": decision.body + "\n\nAnd replication."},
    )
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    services.record_verify(record=constraint, actor=owner)
    successor = make_record(space=space, actor=owner, title="Use PostgreSQL 18 for the ledger")
    services.record_supersede(old=decision, new=successor, actor=owner)
    reminders.sweep(full=True)
    reminders.snapshot_health()
    retrieval.gap_report(principal=owner, query="How do refunds settle?", space=space)
    accounts.token_create(user=admin, name="ci", spaces=[space])
    return {"admin": admin, "decision": decision, "stale": stale}


def test_no_page_breaks_the_content_security_policy(browser, live_server, space, populated):  # noqa: F811
    assert django_settings.SECURE_CSP, "tests run with the production (enforced) policy"
    admin, decision = populated["admin"], populated["decision"]
    s, k = space.slug, decision.key
    problems: dict[str, list[str]] = {}

    anonymous = browser.new_context(base_url=live_server.url)
    anonymous.add_init_script(COLLECT_VIOLATIONS)
    page = anonymous.new_page()
    # The detector works: a page with inline code gets reports.
    page.goto("/accounts/login/")
    page.evaluate("() => { const d = document.createElement('div'); d.innerHTML = "
                  "'<img src=x onerror=\"1\" style=\"color:red\">'; document.body.append(d); }")  # fmt: skip
    page.wait_for_timeout(150)
    assert len(page.evaluate("() => window.__csp")) >= 1
    _visit(page, "/accounts/login/", problems)
    _visit(page, "/no-such-page/", problems, status=404)
    anonymous.close()

    context = _signed_in_context(browser, live_server, admin)
    page = context.new_page()
    try:
        for url in [
            "/",
            "/spaces/new/",
            "/me/password/",
            "/accounts/tokens/",
            f"/s/{s}/",
            f"/s/{s}/?q=ledger",
            f"/s/{s}/?kind=decision&freshness=stale",
            f"/s/{s}/members/",
            f"/s/{s}/new/?kind=decision",
            f"/s/{s}/new/?kind=guardrail",
            f"/s/{s}/{k}/",
            f"/s/{s}/{k}/supersede/",
            f"/s/{s}/{k}/history/",
            f"/s/{s}/{k}/history/1/",
            f"/s/{s}/{k}/history/2/",
            f"/s/{s}/{k}/graph/",
            f"/s/{s}/{populated['stale'].key}/",
            f"/s/{s}/import/",
            f"/spaces/{s}/health",
            f"/spaces/{s}/gaps/",
            "/health",
            "/review/",
            "/settings/reminders/",
        ]:
            _visit(page, url, problems)
        edit = f"/s/{s}/{populated['stale'].key}/edit/"
        _visit(page, edit, problems, then=_type_in_body)
        _visit(page, edit, problems, then=lambda p: _save_after_someone_else(p, populated))
        _visit(page, "/s/elsewhere/", problems, status=404)
    finally:
        context.close()

    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    context = _signed_in_context(browser, live_server, root)
    page = context.new_page()
    try:
        for url in [
            "/admin/",
            "/admin/audit/auditevent/",
            f"/admin/audit/auditevent/{_first_audit_id()}/change/",
            "/admin/records/record/",
            f"/admin/records/record/{decision.pk}/change/",
            "/api/docs/",  # the vendored Swagger UI, under its own (looser) policy
        ]:
            _visit(page, url, problems)
    finally:
        context.close()

    assert problems == {}


def _first_audit_id() -> int:
    from apps.audit.models import AuditEvent

    return AuditEvent.objects.order_by("id").values_list("id", flat=True).first()

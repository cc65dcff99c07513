"""The Tokens page in headless Chromium: create, copy once, use, reload, revoke."""

import httpx
import pytest

from apps.accounts.models import ApiToken
from tests.e2e.conftest import browser, login, new_page  # noqa: F401 - shared Playwright fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Installed before any page script: collects what the page's Content-Security-Policy refused.
COLLECT_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.blockedURI));
"""


def test_create_copy_use_and_revoke_a_token_in_the_browser(new_page, live_server, space, owner):  # noqa: F811
    page = new_page()
    page.context.add_init_script(COLLECT_CSP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, owner)
    # The user menu leads to the page.
    page.get_by_label(f"Account menu for {owner.display_name}").click()
    page.get_by_role("link", name="Tokens").click()
    page.get_by_role("heading", name="API tokens").wait_for()

    page.get_by_label("Name").fill("Cursor on my laptop")
    page.get_by_label("Scope").select_option("read_write")
    page.get_by_label("Payments").check()
    page.get_by_label("Expires in (days)").fill("30")
    page.get_by_role("button", name="Create token").click()

    shown = page.get_by_label("The new token")
    plain = shown.input_value()
    assert plain.startswith("ckb_") and len(plain) > 40
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == plain

    headers = {"Authorization": f"Bearer {plain}"}
    me = httpx.get(f"{live_server.url}/api/v1/me/", headers=headers).json()
    assert (me["token"]["name"], me["token"]["scope"], me["token"]["spaces"]) == (
        "Cursor on my laptop",
        "read_write",
        ["payments"],
    )

    # Reloading neither shows the token again nor creates another one.
    page.reload()
    assert page.get_by_label("The new token").count() == 0
    assert plain not in page.content()
    assert ApiToken.objects.filter(user=owner).count() == 1
    row = page.get_by_role("row").filter(has_text="Cursor on my laptop")
    assert "Read and write" in row.inner_text() and "ago" in row.inner_text()  # last used

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.get_by_text("revoked; it no longer works").wait_for()
    assert "Revoked" in page.get_by_role("row").filter(has_text="Cursor on my laptop").inner_text()
    answer = httpx.get(f"{live_server.url}/api/v1/me/", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "authentication_failed"

    assert page.evaluate("() => window.__csp") == []
    assert page.console_errors == []

"""Single sign-on through a real OpenID provider (tests/sso/idp) in headless Chromium."""

from __future__ import annotations

import re

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.management import call_command

from apps.accounts.models import Membership, User
from apps.audit.lockout import lock_for
from apps.audit.models import AuditEvent
from apps.sso.models import GroupRoleMapping
from tests.factories import MembershipFactory, SpaceFactory, UserFactory
from tests.sso.conftest import idp_credentials, idp_sign_in, sign_in_through_idp, sso_start

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def spaces(transactional_db):
    platform = SpaceFactory(name="Platform", slug="platform")
    docs = SpaceFactory(name="Docs", slug="docs")
    handbook = SpaceFactory(name="Handbook", slug="handbook")
    # One mapping in the admin, one from SSO_GROUP_ROLES (engineering → platform:editor).
    GroupRoleMapping.objects.create(group="docs-admins", space=docs, role="admin")
    return platform, docs, handbook


def roles(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("space__slug", "role"))


def test_first_sign_in_creates_the_user_with_mapped_roles_and_leaving_a_group_removes_its_role(
    sso, spaces, new_page
):
    _platform, docs, handbook = spaces
    page = new_page()
    sign_in_through_idp(page, "alice")

    page.get_by_role("heading", name="Spaces").wait_for()
    alice = User.objects.get(email="alice@example.com")
    assert alice.username == "alice"
    assert (alice.first_name, alice.last_name) == ("Alice", "Ng")
    assert not alice.has_usable_password()
    assert roles(alice) == {"platform": "editor", "docs": "admin"}
    assert page.get_by_role("link", name="Docs").count() == 1

    # An administrator adds her to another space by hand; SSO must leave that alone.
    MembershipFactory(user=alice, space=handbook, role="viewer")
    # She leaves the docs-admins group at the provider; the next sign-in takes the role away.
    sso.set(groups={"alice": ["engineering"]})
    page.locator(".usermenu summary").click()
    page.get_by_role("button", name="Log out").click()
    sign_in_through_idp(page, "alice")

    page.get_by_role("heading", name="Spaces").wait_for()
    assert User.objects.filter(email="alice@example.com").count() == 1
    assert roles(alice) == {"platform": "editor", "handbook": "viewer"}
    assert page.get_by_role("link", name="Docs").count() == 0
    response = page.goto(f"/s/{docs.slug}/")
    assert response.status in (403, 404)


def failure_text(page) -> str:
    alert = page.locator("[data-sso-failure]")
    alert.wait_for()
    return alert.inner_text()


def assert_signed_out(page) -> None:
    assert page.locator(".usermenu").count() == 0
    page.goto("/")
    assert "/accounts/login/" in page.url


def test_sign_in_page_offers_sso_and_keeps_the_password_form_for_admins(sso, new_page, shoot):
    page = new_page(1000, 760)
    page.goto("/accounts/login/")
    button = page.get_by_role("button", name="Sign in with Test IdP")
    assert button.is_visible()
    # The password form is folded away as the administrators' break-glass.
    assert not page.locator("#id_username").is_visible()
    page.get_by_text("Administrator sign-in with a password (break-glass)").click()
    assert page.locator("#id_username").is_visible()
    shoot(page, "sso-login")


def test_refusing_consent_at_the_provider_signs_nobody_in(sso, spaces, new_page):
    page = new_page()
    sign_in_through_idp(page, "bob", consent=False)
    assert "did not let you in" in failure_text(page)
    assert not User.objects.filter(email="bob@example.com").exists()
    # A refused SSO sign-in is not a password failure: the lockout does not count it.
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).exists()
    assert_signed_out(page)


def test_an_error_answer_from_the_provider_is_shown(sso, settings, spaces, new_page):
    settings.SSO_SCOPES = ["openid", "email", "no-such-scope"]
    page = new_page()
    sso_start(page)
    page.wait_for_url("**/login/**")
    idp_credentials(page, "bob")
    text = failure_text(page)
    assert "The identity provider refused the sign-in (invalid_scope" in text
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("bad_signature", "has a signature that does not verify"),
        ("wrong_audience", "was issued for another application"),
        ("expired", "has expired"),
    ],
)
def test_an_id_token_that_does_not_verify_is_refused(sso, spaces, new_page, fault, words):
    sso.set(fault=fault)
    page = new_page()
    sign_in_through_idp(page, "bob")
    text = failure_text(page)
    assert f"its ID token {words}" in text
    assert not User.objects.filter(email="bob@example.com").exists()
    assert not SocialAccount.objects.exists()
    assert_signed_out(page)


def test_an_email_domain_outside_the_allowed_ones_is_refused(sso, settings, spaces, new_page):
    settings.SSO_ALLOWED_DOMAINS = ["corp.example"]
    page = new_page()
    sign_in_through_idp(page, "bob")
    assert "Accounts from example.com cannot sign in here" in failure_text(page)
    assert not User.objects.exists()


def test_a_wrong_client_secret_is_reported_to_the_admin(sso, settings, spaces, new_page):
    settings.SSO_CLIENT_SECRET = "not-the-secret"
    page = new_page()
    sign_in_through_idp(page, "bob")
    text = failure_text(page)
    assert "did not accept contextkb's client credentials" in text
    assert "SSO_CLIENT_SECRET" in page.content()
    assert not User.objects.filter(email="bob@example.com").exists()


def test_an_issuer_whose_discovery_fails_gets_a_clear_page(sso, settings, new_page):
    settings.SSO_ISSUER_URL = "http://127.0.0.1:9/nothing-here"
    page = new_page()
    page.goto("/accounts/login/")
    with page.expect_response("**/sso/oidc/login/") as answer:
        page.get_by_role("button", name="Sign in with Test IdP").click()
    assert answer.value.status == 502
    assert "could not read the identity provider's configuration" in failure_text(page)
    assert "SSO_ISSUER_URL" in page.content()


def test_a_callback_carried_to_another_browser_is_refused_as_a_state_mismatch(
    sso, spaces, new_page
):
    victim = new_page()
    captured = []

    def hold(route):
        # The provider's answer to "Authorize": a redirect to our callback with code and state.
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        captured.append(answer.headers["location"])
        route.abort()

    victim.route(re.compile(r"//127\.0\.0\.1:\d+/o/authorize/"), hold)
    sign_in_through_idp(victim, "bob")
    assert captured and "code=" in captured[0] and "state=" in captured[0]
    # The same answer, with its valid code, replayed in a browser that did not start the sign-in.
    other = new_page()
    other.goto(captured[0])
    assert "could not be matched to one started in this browser" in failure_text(other)
    assert not User.objects.filter(email="bob@example.com").exists()


def test_an_email_that_belongs_to_a_local_account_is_not_linked_silently(sso, spaces, new_page):
    local = UserFactory(username="alice.local", email="Alice@example.com")
    page = new_page()
    sign_in_through_idp(page, "alice")
    text = failure_text(page)
    assert "Alice@example.com" not in text or "already exists" in text
    assert "already exists" in text and "Ask an administrator to link the two" in text
    assert User.objects.count() == 1
    assert not SocialAccount.objects.exists()
    assert not Membership.objects.filter(user=local).exists()
    assert_signed_out(page)

    # The administrator links them with the reference the page gave; now it lands in her account.
    reference = text.split("give them this reference: ")[1].strip().rstrip(".")
    call_command("sso_link", "alice.local", reference)
    sign_in_through_idp(page, "alice")
    page.get_by_role("heading", name="Spaces").wait_for()
    assert User.objects.count() == 1
    assert roles(local) == {"platform": "editor", "docs": "admin"}


def test_a_password_lockout_does_not_keep_anyone_out_of_sso(sso, spaces, new_page, client):
    page = new_page()
    sign_in_through_idp(page, "bob")
    page.get_by_role("heading", name="Spaces").wait_for()
    for _ in range(6):  # someone guesses bob's (local) password from his address
        client.post("/accounts/login/", {"username": "bob", "password": "guess"})
    assert lock_for(username="bob", ip="127.0.0.1") is not None
    page.locator(".usermenu summary").click()
    page.get_by_role("button", name="Log out").click()

    sign_in_through_idp(page, "bob")
    page.get_by_role("heading", name="Spaces").wait_for()
    assert page.locator(".usermenu").count() == 1


def test_a_deactivated_user_cannot_come_back_through_sso(sso, spaces, new_page):
    page = new_page()
    sign_in_through_idp(page, "bob")
    page.get_by_role("heading", name="Spaces").wait_for()
    User.objects.filter(username="bob").update(is_active=False)
    page.context.clear_cookies()
    sign_in_through_idp(page, "bob")
    assert "Your contextkb account is deactivated" in failure_text(page)
    assert_signed_out(page)


def test_sso_returns_to_the_page_that_asked_for_a_sign_in(sso, spaces, new_page):
    page = new_page()
    page.goto("/s/platform/")
    assert "/accounts/login/" in page.url and "next=" in page.url
    page.get_by_role("button", name="Sign in with Test IdP").click()
    idp_sign_in(page, "bob")
    page.locator("input[value='Authorize']").click()
    page.wait_for_url("**/s/platform/")
    assert page.get_by_role("heading", name="Platform").count() >= 1

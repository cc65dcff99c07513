"""Password sign-in next to SSO: the break-glass rule (SSO_LOCAL_LOGIN) and the lockout, which
counts password failures only."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from tests.factories import UserFactory

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def sso_on(settings):
    settings.SSO_ISSUER_URL = "http://127.0.0.1:9/unused"
    settings.SSO_CLIENT_ID = "client"
    settings.SSO_PROVIDER_NAME = "Okta"


def sign_in(client, username, password=PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_without_sso_the_page_is_the_password_form(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert 'name="password"' in page


@pytest.mark.parametrize("policy", ["admins", "all"])
def test_an_administrator_can_always_use_the_break_glass_password(
    client, db, sso_on, settings, policy
):
    settings.SSO_LOCAL_LOGIN = policy
    UserFactory(username="root", is_staff=True, is_superuser=True)
    response = sign_in(client, "root")
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_admins_only_refuses_other_people_after_the_right_password(client, db, sso_on, settings):
    settings.SSO_LOCAL_LOGIN = "admins"
    UserFactory(username="pat")
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Okta" in page and "break-glass" in page
    response = sign_in(client, "pat")
    assert response.status_code == 200
    assert "kept for administrators (break-glass)" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # A wrong password still says only that the password is wrong (no hint who is an admin).
    response = sign_in(client, "pat", "wrong")
    assert "kept for administrators" not in response.content.decode()


def test_off_hides_the_form_and_refuses_every_password(client, db, sso_on, settings):
    settings.SSO_LOCAL_LOGIN = "off"
    UserFactory(username="root", is_staff=True, is_superuser=True)
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Okta" in page and 'name="password"' not in page
    response = sign_in(client, "root")
    assert "Password sign-in is turned off here" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Nor through the admin's own sign-in page.
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert "Password sign-in is turned off here" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Refused before the password is checked: nothing counts towards the lockout.
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).exists()

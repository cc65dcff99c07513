"""A real OpenID provider for the SSO tests: django-oauth-toolkit (tests/sso/idp) in a second
Django process with its own SQLite database and an RSA key made here, registered with contextkb's
redirect URI on the live server. Tests change users' groups, or make the provider misbehave,
through its JSON control file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.conftest import browser, new_page, shoot  # noqa: F401 - shared fixtures
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "contextkb-test-client"
CLIENT_SECRET = "contextkb-test-secret-0123456789"
IDP_PASSWORD = "idp-password-1"
IDP_USERS = {
    "alice": {"email": "alice@example.com", "first_name": "Alice", "last_name": "Ng"},
    "bob": {"email": "bob@example.com", "first_name": "Bob", "last_name": "Ito"},
}
DEFAULT_GROUPS = {"alice": ["engineering", "docs-admins"], "bob": ["engineering"]}


@dataclass
class IdP:
    issuer: str
    control_file: Path
    process: subprocess.Popen

    def set(self, *, groups: dict | None = None, fault: str | None = None) -> None:
        state = json.loads(self.control_file.read_text())
        if groups is not None:
            state["groups"] = groups
        state["fault"] = fault
        self.control_file.write_text(json.dumps(state))


@pytest.fixture(scope="session")
def idp(live_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("idp")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = folder / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    control = folder / "control.json"
    users = {name: {**p, "password": IDP_PASSWORD} for name, p in IDP_USERS.items()}
    control.write_text(json.dumps({"users": users, "groups": DEFAULT_GROUPS, "fault": None}))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.sso.idp.settings",
        "IDP_DB": str(folder / "idp.sqlite3"),
        "IDP_KEY_FILE": str(key_file),
        "IDP_CONTROL": str(control),
        "PYTHONPATH": str(ROOT),
    }
    redirect_uri = f"{live_server.url}/sso/oidc/callback/"
    subprocess.run(
        [sys.executable, "-m", "tests.sso.idp.setup", CLIENT_ID, CLIENT_SECRET, redirect_uri],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    port = free_port()
    log = (folder / "idp.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}/o"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the test IdP did not start: {(folder / 'idp.log').read_text()}")
        time.sleep(0.2)
    yield IdP(issuer=issuer, control_file=control, process=process)
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def sso(idp, settings, transactional_db):
    """contextkb configured for the test provider, as the environment would (SSO_*)."""
    settings.SSO_ISSUER_URL = idp.issuer
    settings.SSO_CLIENT_ID = CLIENT_ID
    settings.SSO_CLIENT_SECRET = CLIENT_SECRET
    settings.SSO_PROVIDER_NAME = "Test IdP"
    settings.SSO_SCOPES = ["openid", "profile", "email", "groups"]
    settings.SSO_LOCAL_LOGIN = "admins"
    settings.SSO_GROUP_ROLES = [("engineering", "platform", "editor")]
    settings.SSO_ALLOWED_DOMAINS = []
    idp.set(groups=DEFAULT_GROUPS, fault=None)
    yield idp
    idp.set(groups=DEFAULT_GROUPS, fault=None)


def sso_start(page):
    """From contextkb's sign-in page to the provider."""
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()


def idp_sign_in(page, username: str) -> None:
    """At the provider: sign in if it asks, then wait for its consent page."""
    page.wait_for_url(re.compile(r"//127\.0\.0\.1:\d+/(login|o/authorize)/"))
    if "/login/" in page.url:
        idp_credentials(page, username)
        page.wait_for_url(re.compile(r"//127\.0\.0\.1:\d+/o/authorize/"))
    page.locator("#authorizationForm").wait_for()


def idp_credentials(page, username: str) -> None:
    """Fill in and send the provider's own sign-in form."""
    page.fill("#id_username", username)
    page.fill("#id_password", IDP_PASSWORD)
    page.get_by_role("button", name="Sign in to the IdP").click()


def sign_in_through_idp(page, username: str, *, consent: bool = True) -> None:
    sso_start(page)
    idp_sign_in(page, username)
    page.locator("input[value='Authorize']" if consent else "input[value='Cancel']").click()
    page.wait_for_load_state()

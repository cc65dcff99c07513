"""Production settings pass Django's deployment checklist, and the headers reach the browser."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

from tests.ops.test_settings_env import env_example

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_passes_with_production_environment():
    # .env.example as an operator copies it, with the production lines filled in.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        **env_example(),
        "DJANGO_DEBUG": "false",
        "CONTEXTKB_HTTPS": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "kb.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://kb.example.com",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        # Production sends real mail (the console backend is development-only).
        "SMTP_HOST": "smtp.example.com",
    }
    for name in ("DATABASE_URL", "DATABASE_TEST_NAME", "CONTEXTKB_DATABASE_NAME"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_pages_carry_a_strict_content_security_policy(client, db):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_https_settings_redirect_and_send_hsts(client, db):
    with override_settings(
        SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31_536_000, SECURE_HSTS_PRELOAD=True
    ):
        plain = client.get("/accounts/login/")
        assert plain.status_code == 301
        assert plain["Location"].startswith("https://")
        # Probes are exempt: an orchestrator talks plain HTTP to the container.
        assert client.get("/healthz").status_code == 200
        secure = client.get("/accounts/login/", secure=True)
        assert secure.status_code == 200
        assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


def test_session_cookie_expires_and_is_not_readable_by_scripts(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 12 * 3600


def test_only_the_swagger_page_gets_the_looser_policy(client, db):
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self' 'unsafe-inline'" in docs["Content-Security-Policy"]
    schema = client.get("/api/schema/")
    assert "unsafe-inline" not in schema["Content-Security-Policy"]

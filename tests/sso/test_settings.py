"""Bad SSO_* values stop the server at start with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "contextkb.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SSO_GROUP_ROLES": "engineering=platform"}, "SSO_GROUP_ROLES: 'engineering=platform'"),
        ({"SSO_GROUP_ROLES": "eng=platform:owner"}, "group=space-slug:viewer|editor|admin"),
        ({"SSO_LOCAL_LOGIN": "sometimes"}, "SSO_LOCAL_LOGIN must be one of all, admins, off"),
        ({"SSO_LOCAL_LOGIN": "off"}, "SSO_LOCAL_LOGIN=off needs SSO_ISSUER_URL"),
    ],
)
def test_bad_sso_settings_are_refused_at_start(env, message):
    result = start(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_good_sso_settings_start():
    result = start(
        SSO_ISSUER_URL="https://idp.example.com",
        SSO_CLIENT_ID="contextkb",
        SSO_GROUP_ROLES="cn=eng,ou=groups=platform:editor; leads=platform:admin",
        SSO_LOCAL_LOGIN="off",
    )
    assert result.returncode == 0, result.stderr

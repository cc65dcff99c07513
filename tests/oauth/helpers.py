"""OAuth steps driven with Django's test client (the browser test drives them for real)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

REDIRECT_URI = "http://127.0.0.1:8765/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def register(client, **metadata) -> tuple[int, dict]:
    body = {
        "client_name": "Test agent",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    response = client.post("/oauth/register/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def authorize_params(client_id: str, challenge: str | None, **extra) -> dict:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "read write",
        "state": "state-1",
        **extra,
    }
    if challenge is not None:
        params.setdefault("code_challenge", challenge)
        params.setdefault("code_challenge_method", "S256")
    return params


def consent(client, user, client_id: str, challenge: str | None, *, spaces=(), write=True, **extra):
    """Sign in, open the consent page, allow; returns the redirect's query parameters."""
    client.force_login(user)
    params = authorize_params(client_id, challenge, **extra)
    url = "/oauth/authorize/?" + urlencode(params)
    page = client.get(url)
    assert page.status_code == 200, page.content[:500]
    form = {k: v for k, v in params.items() if k != "code_challenge_method"}
    form["code_challenge_method"] = params.get("code_challenge_method", "")
    form["allow"] = "Authorize"
    form["spaces"] = [space.pk for space in spaces]
    if write:
        form["allow_write"] = "on"
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:500]
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def token(client, **data):
    response = client.post("/oauth/token/", data)
    return response.status_code, response.json()


def exchange(client, client_id: str, code: str, verifier: str | None):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return token(client, **data)

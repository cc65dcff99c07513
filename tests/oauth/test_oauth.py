"""OAuth 2.1 for remote MCP: discovery, consent, tokens acting as API tokens, and bad input
(each refused with the OAuth error shape, RFC 6749 / RFC 7591, and changing nothing)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken, get_application_model

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent
from apps.oauth.models import Connection
from tests.oauth.helpers import (
    REDIRECT_URI,
    authorize_params,
    consent,
    exchange,
    pkce,
    register,
    token,
)

pytestmark = pytest.mark.django_db


def _state() -> dict:
    """What bad input must not change."""
    return {
        "applications": get_application_model().objects.count(),
        "grants": Grant.objects.count(),
        "access_tokens": AccessToken.objects.count(),
        "refresh_tokens": RefreshToken.objects.count(),
        "api_tokens": ApiToken.objects.count(),
        "revoked_api_tokens": ApiToken.objects.filter(revoked_at__isnull=False).count(),
        "connections": Connection.objects.count(),
    }


@pytest.fixture
def app(db):
    status, body = register(Client())
    assert status == 201
    return body


@pytest.fixture
def connected(app, owner, space):
    """A client that went through consent and has its first tokens."""
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    status, tokens = exchange(Client(), app["client_id"], answer["code"], verifier)
    assert status == 200
    return tokens


def _me(plain: str):
    return Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {plain}")


# --- discovery ------------------------------------------------------------------------------


def test_metadata_advertises_code_flow_with_s256_registration_and_revocation():
    server = Client().get("/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == "http://testserver"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["response_types_supported"] == ["code"]
    assert server["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert server["registration_endpoint"] == "http://testserver/oauth/register/"
    assert server["revocation_endpoint"] == "http://testserver/oauth/revoke/"
    assert server["scopes_supported"] == ["read", "write"]

    resource = Client().get("/.well-known/oauth-protected-resource/mcp").json()
    assert resource["resource"] == "http://testserver/mcp"
    assert resource["authorization_servers"] == ["http://testserver"]
    root = Client().get("/.well-known/oauth-protected-resource").json()
    assert root["resource"] == "http://testserver"


# --- the happy path at the Django level -----------------------------------------------------


def test_oauth_token_acts_as_an_api_token_of_the_person_in_the_chosen_spaces(
    connected, owner, space, other_space
):
    me = _me(connected["access_token"])
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == owner.username
    assert body["token"]["name"] == "OAuth: Test agent"
    assert body["token"]["scope"] == "read_write"
    assert body["token"]["spaces"] == ["payments"]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.OAUTH_TOKEN_ISSUED)
    assert event.actor == owner and event.details["spaces"] == ["payments"]
    # Static bearer tokens keep working beside OAuth ones.
    from tests.factories import make_token

    _, plain = make_token(owner)
    assert _me(plain).status_code == 200


def test_unticking_write_on_the_consent_page_gives_a_read_only_token(app, owner, space):
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space], write=False)
    status, tokens = exchange(Client(), app["client_id"], answer["code"], verifier)
    assert status == 200 and tokens["scope"] == "read"
    assert _me(tokens["access_token"]).json()["token"]["scope"] == "read"
    created = Client().post(
        "/api/v1/records/",
        {"space": "payments", "kind": "decision", "title": "Not allowed"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
    )
    assert created.status_code == 403


def test_consent_page_names_client_spaces_and_scopes_and_requires_sign_in(app, owner, space):
    _verifier, challenge = pkce()
    url = "/oauth/authorize/?" + urlencode(authorize_params(app["client_id"], challenge))
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    browser = Client()
    browser.force_login(owner)
    page = browser.get(url)
    html = page.content.decode()
    assert "Test agent" in html and "Payments" in html
    assert "Read records, context and guardrails" in html and "Propose and change" in html
    assert REDIRECT_URI in html
    # The form may return to the client's origin after the post (CSP form-action).
    csp = page.headers.get("Content-Security-Policy") or page.headers.get(
        "Content-Security-Policy-Report-Only"
    )
    assert "http://127.0.0.1:8765" in csp


def test_denying_consent_returns_access_denied_and_grants_nothing(app, owner):
    before = _state()
    _verifier, challenge = pkce()
    browser = Client()
    browser.force_login(owner)
    params = authorize_params(app["client_id"], challenge)
    url = "/oauth/authorize/?" + urlencode(params)
    assert browser.get(url).status_code == 200
    response = browser.post(url, params)  # no "allow"
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["state-1"]
    assert _state() == before


def test_a_space_the_person_cannot_see_is_refused_on_the_consent_form(app, owner, other_space):
    before = _state()
    _verifier, challenge = pkce()
    browser = Client()
    browser.force_login(owner)
    params = authorize_params(app["client_id"], challenge)
    url = "/oauth/authorize/?" + urlencode(params)
    response = browser.post(url, {**params, "allow": "Authorize", "spaces": [other_space.pk]})
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert _state() == before


# --- refresh and revocation -----------------------------------------------------------------


def test_refresh_moves_the_api_token_to_the_new_access_token(app, connected):
    status, fresh = token(
        Client(),
        grant_type="refresh_token",
        refresh_token=connected["refresh_token"],
        client_id=app["client_id"],
    )
    assert status == 200
    assert _me(fresh["access_token"]).status_code == 200
    assert _me(connected["access_token"]).status_code == 401
    assert ApiToken.objects.count() == 1 and Connection.objects.count() == 1


def test_replaying_a_rotated_refresh_token_disconnects_the_client(app, connected):
    status, fresh = token(
        Client(),
        grant_type="refresh_token",
        refresh_token=connected["refresh_token"],
        client_id=app["client_id"],
    )
    assert status == 200
    status, body = token(
        Client(),
        grant_type="refresh_token",
        refresh_token=connected["refresh_token"],
        client_id=app["client_id"],
    )
    assert status == 400 and body["error"] == "invalid_grant"
    # Whoever holds the chain, thief or client, is cut off at every door.
    assert _me(fresh["access_token"]).status_code == 401
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.OAUTH_TOKEN_REVOKED, details__reason="refresh token reused"
    ).exists()


def test_revoking_on_the_api_tokens_page_ends_refreshes_too(app, connected, owner):
    from apps.accounts.services import token_revoke

    token_revoke(token=Connection.objects.get().api_token, actor=owner)
    assert _me(connected["access_token"]).status_code == 401
    before = _state()
    status, body = token(
        Client(),
        grant_type="refresh_token",
        refresh_token=connected["refresh_token"],
        client_id=app["client_id"],
    )
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


def test_revoking_the_refresh_token_also_stops_the_access_token(app, connected):
    response = Client().post(
        "/oauth/revoke/",
        {"token": connected["refresh_token"], "client_id": app["client_id"]},
    )
    assert response.status_code == 200
    assert _me(connected["access_token"]).status_code == 401


def test_another_client_cannot_revoke_a_token(app, connected):
    _, other = register(Client(), client_name="Other")
    response = Client().post(
        "/oauth/revoke/", {"token": connected["access_token"], "client_id": other["client_id"]}
    )
    assert response.status_code == 200  # RFC 7009: no hint whether the token exists
    assert _me(connected["access_token"]).status_code == 200


# --- bad input: codes, redirect URIs, PKCE, expiry ------------------------------------------


def test_a_replayed_authorization_code_is_refused(app, owner, space):
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    status, _ = exchange(Client(), app["client_id"], answer["code"], verifier)
    assert status == 200
    before = _state()
    status, body = exchange(Client(), app["client_id"], answer["code"], verifier)
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


def test_a_forged_authorization_code_is_refused(app):
    before = _state()
    verifier, _ = pkce()
    status, body = exchange(Client(), app["client_id"], "forged-code-0123456789", verifier)
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


def test_a_code_issued_to_another_client_is_refused(app, owner, space):
    _, other = register(Client(), client_name="Other")
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    before = _state()
    status, body = exchange(Client(), other["client_id"], answer["code"], verifier)
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


def test_an_unregistered_redirect_uri_is_never_redirected_to(app, owner):
    before = _state()
    _verifier, challenge = pkce()
    browser = Client()
    browser.force_login(owner)
    params = authorize_params(
        app["client_id"], challenge, redirect_uri="https://attacker.example/callback"
    )
    response = browser.get("/oauth/authorize/?" + urlencode(params))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "cannot connect" in response.content.decode()
    # Posting the form anyway changes nothing either.
    response = browser.post("/oauth/authorize/?" + urlencode(params), {**params, "allow": "1"})
    assert response.status_code == 400 and "Location" not in response.headers
    assert _state() == before


def test_a_different_redirect_uri_at_the_token_endpoint_is_refused(app, owner, space):
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    before = _state()
    status, body = token(
        Client(),
        grant_type="authorization_code",
        code=answer["code"],
        redirect_uri="http://127.0.0.1:9999/elsewhere",
        client_id=app["client_id"],
        code_verifier=verifier,
    )
    assert status == 400 and body["error"] in {"invalid_grant", "invalid_request"}
    assert _state() == before


def test_an_authorization_request_without_pkce_is_refused(app, owner):
    before = _state()
    browser = Client()
    browser.force_login(owner)
    response = browser.get(
        "/oauth/authorize/?" + urlencode(authorize_params(app["client_id"], None))
    )
    # The redirect URI is registered, so the error goes back to the client (RFC 6749 4.1.2.1).
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "code challenge" in query["error_description"][0].lower()
    assert _state() == before


def test_the_plain_pkce_method_is_refused(app, owner):
    before = _state()
    verifier, _ = pkce()
    browser = Client()
    browser.force_login(owner)
    params = authorize_params(
        app["client_id"], verifier, code_challenge_method="plain", code_challenge=verifier
    )
    url = "/oauth/authorize/?" + urlencode(params)
    response = browser.get(url)
    if response.status_code == 200:  # refused at the latest when the code would be issued
        response = browser.post(url, {**params, "allow": "Authorize"})
    assert response.status_code in {302, 400}
    if response.status_code == 302:
        assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_request"]
    assert _state() == before


def test_a_pkce_mismatch_or_missing_verifier_is_refused(app, owner, space):
    _verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    before = _state()
    wrong, _ = pkce()
    status, body = exchange(Client(), app["client_id"], answer["code"], wrong)
    assert status == 400 and body["error"] == "invalid_grant"
    status, body = exchange(Client(), app["client_id"], answer["code"], None)
    assert status == 400 and body["error"] in {"invalid_request", "invalid_grant"}
    assert _state() == before


def test_an_expired_authorization_code_is_refused(app, owner, space):
    verifier, challenge = pkce()
    answer = consent(Client(), owner, app["client_id"], challenge, spaces=[space])
    before = _state()
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=120)):
        status, body = exchange(Client(), app["client_id"], answer["code"], verifier)
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


def test_an_expired_access_token_is_refused_with_the_api_error_shape(connected):
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        response = _me(connected["access_token"])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_an_expired_refresh_token_is_refused(app, connected):
    before = _state()
    with time_machine.travel(timezone.now() + dt.timedelta(days=40)):
        status, body = token(
            Client(),
            grant_type="refresh_token",
            refresh_token=connected["refresh_token"],
            client_id=app["client_id"],
        )
    assert status == 400 and body["error"] == "invalid_grant"
    assert _state() == before


# --- bad input: registration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00\xffnot json at all", id="garbage"),
        pytest.param(b"[1, 2, 3]", id="array"),
        pytest.param(json.dumps({"client_name": "x" * 20_000}).encode(), id="oversized"),
        pytest.param(json.dumps({"client_name": "no redirect"}).encode(), id="no-redirect"),
        pytest.param(
            json.dumps({"redirect_uris": ["javascript:alert(1)"]}).encode(), id="bad-scheme"
        ),
        pytest.param(
            json.dumps({"redirect_uris": [f"http://127.0.0.1/{i}" for i in range(50)]}).encode(),
            id="too-many-uris",
        ),
        pytest.param(
            json.dumps({"redirect_uris": ["http://kb-client.example/callback"]}).encode(),
            id="http-not-loopback",
        ),
        pytest.param(
            json.dumps({"redirect_uris": [REDIRECT_URI], "client_name": {"a": 1}}).encode(),
            id="name-not-a-string",
        ),
        pytest.param(
            json.dumps(
                {"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}
            ).encode(),
            id="client-credentials",
        ),
        pytest.param(
            json.dumps({"redirect_uris": [REDIRECT_URI], "response_types": ["token"]}).encode(),
            id="implicit",
        ),
        pytest.param(
            json.dumps(
                {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt"}
            ).encode(),
            id="unknown-auth-method",
        ),
    ],
)
def test_bad_registrations_are_refused_with_rfc7591_errors(db, body):
    before = _state()
    response = Client().post("/oauth/register/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert response.json()["error_description"]
    assert _state() == before


def test_registrations_over_the_rate_limit_get_429_and_register_nothing(db, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "oauth_register": "2/hour"}
    assert register(Client())[0] == 201
    assert register(Client())[0] == 201
    before = _state()
    response = Client().post(
        "/oauth/register/",
        json.dumps({"redirect_uris": [REDIRECT_URI]}),
        content_type="application/json",
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "too_many_requests"
    assert _state() == before


def test_nightly_cleanup_drops_expired_codes_and_keeps_what_refresh_and_reuse_detection_need(
    app, connected, owner, space
):
    from apps.oauth.tasks import clear_expired_tokens

    status, fresh = token(
        Client(),
        grant_type="refresh_token",
        refresh_token=connected["refresh_token"],
        client_id=app["client_id"],
    )
    assert status == 200
    _, challenge = pkce()
    consent(Client(), owner, app["client_id"], challenge, spaces=[space])  # never exchanged
    assert RefreshToken.objects.count() == 2 and Grant.objects.count() == 1
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):
        clear_expired_tokens()
    # The unused code is gone; the rotated refresh token stays so a replay is still detected.
    assert Grant.objects.count() == 0 and RefreshToken.objects.count() == 2
    assert _me(fresh["access_token"]).status_code == 200
    # A month after the last use, the whole chain is gone and cannot be refreshed.
    with time_machine.travel(timezone.now() + dt.timedelta(days=31, hours=2)):
        clear_expired_tokens()
        status, _ = token(
            Client(),
            grant_type="refresh_token",
            refresh_token=fresh["refresh_token"],
            client_id=app["client_id"],
        )
    assert RefreshToken.objects.count() == 0 and status == 400


def test_an_unknown_scope_is_refused_back_to_the_client(app, owner):
    before = _state()
    _, challenge = pkce()
    browser = Client()
    browser.force_login(owner)
    params = authorize_params(app["client_id"], challenge, scope="read admin")
    response = browser.get("/oauth/authorize/?" + urlencode(params))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_scope"]
    assert _state() == before


def test_the_connection_is_listed_and_revocable_on_the_tokens_page(app, connected, owner):
    browser = Client()
    browser.force_login(owner)
    page = browser.get("/accounts/tokens/").content.decode()
    assert "OAuth: Test agent" in page
    api_token = Connection.objects.get().api_token
    response = browser.post(f"/accounts/tokens/{api_token.pk}/revoke/")
    assert response.status_code in {200, 302}
    assert _me(connected["access_token"]).status_code == 401


# --- connected as a registered agent --------------------------------------------------------


def test_a_client_connected_as_a_registered_agent_is_bound_by_the_agents_scope(
    app, owner, admin_user, space, other_space
):
    """Issue 15: tokens issued by OAuth can be tied to a registered agent. The person answering
    for the agent picks it on the consent page; the token is then the agent's: its spaces,
    read-only for records, and refused (and audited) outside its paths."""
    from apps.agents import services as agents

    agent = agents.agent_create(
        actor=admin_user,
        name="Billing bot",
        purpose="Keeps billing retries tidy.",
        accountable=owner,
        spaces=[space],
        path_globs=["services/billing/**"],
    )
    client = Client()
    client.force_login(owner)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    url = "/oauth/authorize/?" + urlencode(params)
    page = client.get(url)
    assert "Connect it as a registered agent" in page.content.decode()
    assert "Billing bot" in page.content.decode()
    form = {**params, "allow": "Authorize", "allow_write": "on", "agent": agent.pk}
    answer = client.post(url, form)
    assert answer.status_code == 302
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    status, tokens = exchange(Client(), app["client_id"], code, verifier)
    assert status == 200
    issued = ApiToken.objects.get(oauth_connection__isnull=False)
    assert issued.agent == agent
    me = _me(tokens["access_token"]).json()
    # Read-only and the agent's spaces, although write was ticked and no space was chosen.
    assert me["token"]["scope"] == "read" and me["token"]["spaces"] == ["payments"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    inside = Client().get(
        "/api/v1/context/",
        {"q": "retries", "spaces": "payments", "paths": "services/billing/retry.py"},
        **bearer,
    )
    assert inside.status_code == 200
    outside = Client().get(
        "/api/v1/context/", {"q": "retries", "spaces": "payments", "paths": "web/app.js"}, **bearer
    )
    assert outside.status_code == 403
    assert outside.json()["error"]["code"] == "agent_out_of_scope"
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.AGENT_REFUSED).count() == 1


def test_an_agent_the_person_does_not_answer_for_cannot_be_chosen(app, owner, admin_user, space):
    from apps.agents import services as agents

    someone_elses = agents.agent_create(
        actor=admin_user,
        name="Ops bot",
        purpose="Not the owner's.",
        accountable=admin_user,
        spaces=[space],
        path_globs=["ops/**"],
    )
    before = _state()
    client = Client()
    client.force_login(owner)
    _verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    url = "/oauth/authorize/?" + urlencode(params)
    answer = client.post(url, {**params, "allow": "Authorize", "agent": someone_elses.pk})
    assert answer.status_code == 400
    assert "agent" in answer.content.decode()
    assert _state() == before

"""Done-when of OAuth for remote MCP: the official MCP SDK client, with its OAuthClientProvider,
against the live server (uvicorn: Django + /mcp): discovery from the 401, dynamic registration,
PKCE, a sign-in and consent given in headless Chromium, tool calls, a refresh, a revocation."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientMetadata

from apps.accounts.models import ApiToken, Membership
from apps.audit.models import AuditEvent
from apps.oauth.models import Connection
from apps.retrieval import usage
from tests.e2e.conftest import CHROMIUM_ARGS, PASSWORD, SCREENSHOTS, _chromium_path
from tests.factories import MembershipFactory, SpaceFactory, make_record
from tests.live import live_contextkb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CALLBACK = "http://127.0.0.1:33418/callback"


@pytest.fixture
def live_mcp(transactional_db):
    """contextkb (Django + MCP at /mcp) under uvicorn, in a thread."""
    with live_contextkb(static=True) as url:
        yield url


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory (what a client keeps between runs)."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def two_spaces(owner, space):
    platform = SpaceFactory(name="Platform", slug="platform")
    MembershipFactory(space=platform, user=owner, role=Membership.Role.EDITOR)
    shown = make_record(
        space=space, actor=owner, title="Retry card payments with backoff", status="accepted"
    )
    hidden = make_record(
        space=platform, actor=owner, title="Retry platform payments webhooks", status="accepted"
    )
    return shown, hidden


async def _scenario(base: str, username: str, seen: dict):
    from playwright.async_api import async_playwright

    storage = MemoryStorage()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=_chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(15_000)
        # The client's loopback listener: the browser's redirect to it is answered here.
        await page.route(
            CALLBACK + "**", lambda route: route.fulfill(status=200, body="You can close this.")
        )

        async def redirect_handler(url: str) -> None:
            seen["authorize_url"] = url
            await page.goto(url)
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/oauth/authorize/**")
            seen["consent"] = await page.inner_text("main")
            await page.get_by_label("Payments").check()
            await page.screenshot(path=str(SCREENSHOTS / "oauth-consent.png"), full_page=True)
            await page.get_by_role("button", name="Allow").click()
            await page.wait_for_url(CALLBACK + "**")
            seen["callback"] = page.url

        async def callback_handler() -> AuthorizationCodeResult:
            query = {k: v[0] for k, v in parse_qs(urlsplit(seen["callback"]).query).items()}
            return AuthorizationCodeResult(
                code=query["code"], state=query.get("state"), iss=query.get("iss")
            )

        provider = OAuthClientProvider(
            server_url=base + "/mcp",
            client_metadata=OAuthClientMetadata(
                client_name="E2E MCP client",
                redirect_uris=[CALLBACK],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )
        async with create_mcp_http_client(auth=provider) as http:
            async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
                seen["search"] = _text(
                    await client.call_tool("search_context", {"query": "retry payments"})
                )
                seen["first"] = storage.tokens
                # The access token has expired as far as the client knows: it refreshes.
                provider.context.token_expiry_time = time.time() - 1
                seen["after_refresh"] = _text(
                    await client.call_tool("search_context", {"query": "retry payments"})
                )
                seen["second"] = storage.tokens
            seen["metadata"] = provider.context.oauth_metadata
            seen["client_id"] = storage.client_info.client_id
        await browser.close()

    async with httpx.AsyncClient(base_url=base) as raw:
        mcp_call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/list",
            "params": {},
        }
        headers = {"Accept": "application/json, text/event-stream"}

        async def call_with(token: str) -> httpx.Response:
            return await raw.post(
                "/mcp", json=mcp_call, headers={**headers, "Authorization": f"Bearer {token}"}
            )

        seen["anonymous"] = await raw.post("/mcp", json=mcp_call, headers=headers)
        seen["old_token_after_refresh"] = await call_with(seen["first"].access_token)
        seen["new_token_before_revoke"] = await call_with(seen["second"].access_token)
        revoke = await raw.post(
            str(seen["metadata"].revocation_endpoint),
            data={"token": seen["second"].access_token, "client_id": seen["client_id"]},
        )
        seen["revoke_status"] = revoke.status_code
        seen["after_revoke"] = await call_with(seen["second"].access_token)
        seen["refresh_after_revoke"] = await raw.post(
            str(seen["metadata"].token_endpoint),
            data={
                "grant_type": "refresh_token",
                "refresh_token": seen["second"].refresh_token,
                "client_id": seen["client_id"],
            },
        )


def test_mcp_sdk_client_connects_with_oauth_refreshes_and_is_cut_off_by_revocation(
    live_mcp,
    owner,
    space,
    two_spaces,
    monkeypatch,
):
    monkeypatch.setattr(usage, "dispatch", lambda payload: None)
    shown, hidden = two_spaces
    assert hidden.title.startswith("Retry platform")
    seen: dict = {}
    asyncio.run(_scenario(live_mcp, owner.username, seen))

    # Discovery starts from the 401, which names the protected resource metadata (RFC 9728).
    assert seen["anonymous"].status_code == 401
    assert seen["anonymous"].headers["www-authenticate"] == (
        f'Bearer realm="mcp", resource_metadata="{live_mcp}/.well-known/oauth-protected-resource/mcp"'
    )
    # The client registered itself and used PKCE S256.
    assert "code_challenge_method=S256" in seen["authorize_url"]
    assert "resource=" in seen["authorize_url"]
    # The consent page named the client, the spaces and the scopes.
    assert "E2E MCP client" in seen["consent"]
    assert "Payments" in seen["consent"] and "Platform" in seen["consent"]
    assert "Read records" in seen["consent"] and "write" in seen["consent"].lower()
    # Only the space ticked on the consent page is visible to the client.
    assert shown.key in seen["search"] and "Retry card payments" in seen["search"]
    assert "Retry platform payments" not in seen["search"]
    # A refresh gave a new access token; the old one stopped working, the new one works.
    assert seen["second"].access_token != seen["first"].access_token
    assert seen["second"].refresh_token != seen["first"].refresh_token
    assert "Retry card payments" in seen["after_refresh"]
    assert seen["old_token_after_refresh"].status_code == 401
    assert seen["new_token_before_revoke"].status_code == 200
    # RFC 7009 revocation: the MCP endpoint answers 401 and the refresh token is dead too.
    assert seen["revoke_status"] == 200
    assert seen["after_revoke"].status_code == 401
    challenge = seen["after_revoke"].headers["www-authenticate"]
    assert f'resource_metadata="{live_mcp}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert seen["after_revoke"].json()["error"]["code"] == "authentication_failed"
    assert seen["refresh_after_revoke"].status_code == 400
    assert seen["refresh_after_revoke"].json()["error"] == "invalid_grant"

    # One connection, acting as one API token of the person who consented, now revoked.
    connection = Connection.objects.get()
    token = ApiToken.objects.get(pk=connection.api_token_id)
    assert token.user == owner and token.name == "OAuth: E2E MCP client"
    assert list(token.spaces.values_list("slug", flat=True)) == ["payments"]
    assert token.revoked_at is not None
    kinds = list(AuditEvent.objects.filter(token=token).values_list("kind", flat=True))
    assert AuditEvent.Kind.OAUTH_TOKEN_ISSUED in kinds
    assert AuditEvent.Kind.OAUTH_TOKEN_REVOKED in kinds

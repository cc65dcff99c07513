"""Why an SSO sign-in failed, in words for the person and for the administrator."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jwt
import requests
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.shortcuts import render

logger = logging.getLogger("apps.sso")


@dataclass(frozen=True)
class Failure:
    code: str
    message: str  # for the person signing in
    admin_hint: str = ""  # what an administrator should check
    status: int = 400


def failure_page(request, failure: Failure, *, detail: str = ""):
    """The page that tells the person why they are not signed in (nothing was created)."""
    logger.warning(
        "SSO sign-in failed: %s%s",
        failure.code,
        f" ({detail})" if detail else "",
        extra={"sso_failure": failure.code},
    )
    return render(request, "sso/failed.html", {"failure": failure}, status=failure.status)


def discovery_failed(url: str, exc: Exception) -> Failure:
    return Failure(
        "discovery",
        "Single sign-on is not working right now: contextkb could not read the identity "
        "provider's configuration.",
        f"Fetching {url} failed ({_short(exc)}). Check SSO_ISSUER_URL: it must be the issuer "
        "(or its /.well-known/openid-configuration URL) and reachable from the server.",
        status=502,
    )


STATE = Failure(
    "state",
    "This sign-in could not be matched to one started in this browser: it expired, was "
    "already used, or was started elsewhere. Nothing was changed; start again from the "
    "sign-in page.",
    "The state parameter returned by the provider did not match a sign-in started in this "
    "session (or the session cookie was lost between contextkb and the provider).",
)
CANCELLED = Failure(
    "cancelled",
    "The identity provider did not let you in: the sign-in was cancelled or consent was "
    "not given. You are not signed in.",
    status=403,
)


def provider_error(error: str, description: str) -> Failure:
    said = error + (f": {description}" if description else "")
    return Failure(
        "provider_error",
        f"The identity provider refused the sign-in ({said[:300]}). You are not signed in.",
        "The provider answered the authorization request with an error; its logs say why "
        "(an unknown scope in SSO_SCOPES, a user not assigned to the application, …).",
        status=403,
    )


def from_exception(exc: Exception | None) -> Failure:
    """The failure behind an exception raised while finishing a sign-in."""
    cause = exc.__cause__ if exc is not None else None
    text = str(exc) if exc is not None else ""
    if isinstance(cause, jwt.ExpiredSignatureError):
        return _token("has expired", "Check the server clocks (contextkb's and the provider's).")
    if isinstance(cause, jwt.InvalidAudienceError):
        return _token(
            "was issued for another application (audience)",
            "The ID token's aud claim is not SSO_CLIENT_ID; check the client id.",
        )
    if isinstance(cause, jwt.InvalidIssuerError):
        return _token(
            "comes from another issuer",
            "The ID token's iss claim differs from the issuer in the discovery document.",
        )
    if isinstance(cause, jwt.InvalidSignatureError | jwt.InvalidKeyError) or "kid" in text:
        return _token(
            "has a signature that does not verify",
            "The ID token was not signed by a key published at the provider's jwks_uri.",
        )
    if isinstance(cause, jwt.PyJWTError) or "id_token" in text:
        return _token("could not be verified", f"{_short(cause or exc)}.")
    if isinstance(exc, OAuth2Error) and "invalid_client" in text:
        return Failure(
            "client_credentials",
            "Single sign-on is misconfigured: the identity provider did not accept "
            "contextkb's client credentials. You are not signed in.",
            "The token endpoint answered invalid_client: check SSO_CLIENT_ID and "
            "SSO_CLIENT_SECRET against the application registered at the provider.",
            status=502,
        )
    if isinstance(exc, OAuth2Error):
        return Failure(
            "token_exchange",
            "The identity provider did not complete the sign-in. You are not signed in.",
            f"The token request failed: {_short(exc)}",
            status=502,
        )
    if isinstance(exc, requests.RequestException):
        return Failure(
            "provider_unreachable",
            "contextkb could not reach the identity provider to finish the sign-in.",
            f"{_short(exc)}. Check SSO_ISSUER_URL and the network between the two.",
            status=502,
        )
    return Failure(
        "unknown",
        "The single sign-on did not complete. You are not signed in.",
        _short(exc) if exc else "",
        status=502,
    )


def from_allauth(error, exception, extra_context: dict, request) -> Failure:
    if exception is not None:
        return from_exception(exception)
    if error == AuthError.CANCELLED:
        return CANCELLED
    if "error" in request.GET:
        return provider_error(
            request.GET.get("error", "")[:100], request.GET.get("error_description", "")[:200]
        )
    if extra_context.get("state") is None:
        return STATE
    return from_exception(None)


def _token(what: str, hint: str) -> Failure:
    return Failure(
        "id_token",
        f"The identity provider's answer was refused: its ID token {what}. "
        "You are not signed in; nothing was created.",
        hint,
        status=502,
    )


def _short(exc) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"

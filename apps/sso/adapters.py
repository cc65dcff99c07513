"""django-allauth adapters: the OpenID Connect app comes from the environment, sign-ins that
would link or create an account silently are refused, and group roles are applied."""

from __future__ import annotations

import re

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.contrib.auth import get_user_model

from apps.sso import errors
from apps.sso.services import groups_from_claims, sso_roles_apply

PROVIDER = "openid_connect"


def sso_enabled() -> bool:
    return bool(settings.SSO_ISSUER_URL and settings.SSO_CLIENT_ID)


def sso_app() -> SocialApp | None:
    """The one OpenID Connect client, built from SSO_* settings (never stored in the database)."""
    if not sso_enabled():
        return None
    return SocialApp(
        provider=PROVIDER,
        provider_id=settings.SSO_PROVIDER_ID,
        name=settings.SSO_PROVIDER_NAME,
        client_id=settings.SSO_CLIENT_ID,
        secret=settings.SSO_CLIENT_SECRET,
        settings={
            "server_url": settings.SSO_ISSUER_URL,
            "scope": settings.SSO_SCOPES,
            "oauth_pkce_enabled": settings.SSO_PKCE,
            **(
                {"token_auth_method": settings.SSO_TOKEN_AUTH_METHOD}
                if settings.SSO_TOKEN_AUTH_METHOD
                else {}
            ),
        },
    )


def claims_of(sociallogin) -> dict:
    """The provider's claims for this sign-in: the verified ID token, with userinfo filling in."""
    data = sociallogin.account.extra_data or {}
    if "id_token" in data or "userinfo" in data:
        return {**(data.get("userinfo") or {}), **(data.get("id_token") or {})}
    return data


def _refuse(request, failure: errors.Failure, detail: str = ""):
    raise ImmediateHttpResponse(errors.failure_page(request, failure, detail=detail))


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        app = sso_app()
        if app is None or provider not in (None, PROVIDER, app.provider_id):
            return []
        if client_id and client_id != app.client_id:
            return []
        return [app]

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ):
        failure = errors.from_allauth(error, exception, extra_context or {}, request)
        _refuse(request, failure, detail=repr(exception) if exception else str(error))

    def pre_social_login(self, request, sociallogin):
        user_model = get_user_model()
        claims = claims_of(sociallogin)
        email = (claims.get("email") or "").strip()
        domains = settings.SSO_ALLOWED_DOMAINS
        if domains and email.rpartition("@")[2].lower() not in domains:
            _refuse(
                request,
                errors.Failure(
                    "domain",
                    f"Accounts from {email.rpartition('@')[2] or 'this provider'} cannot sign "
                    "in here. You are not signed in.",
                    "The email domain is not in SSO_ALLOWED_DOMAINS.",
                    status=403,
                ),
                detail=email,
            )
        if sociallogin.is_existing:
            if not sociallogin.user.is_active:
                _refuse(
                    request,
                    errors.Failure(
                        "inactive",
                        "Your contextkb account is deactivated. Ask an administrator.",
                        status=403,
                    ),
                    detail=sociallogin.user.username,
                )
            return
        if not email:
            _refuse(
                request,
                errors.Failure(
                    "no_email",
                    "The identity provider did not say what your email address is, so no "
                    "account could be created. Ask an administrator.",
                    "Add the email scope to SSO_SCOPES and make sure the provider releases "
                    "the email claim for this user.",
                    status=403,
                ),
            )
        if user_model.objects.filter(email__iexact=email).exists():
            _refuse(
                request,
                errors.Failure(
                    "email_collision",
                    f"A contextkb account with the email address {email} already exists and "
                    "signs in with a password. For your safety, single sign-on does not take "
                    "over an existing account by itself. Ask an administrator to link the two; "
                    f"give them this reference: {sociallogin.account.uid}.",
                    "Link them with `manage.py sso_link <username> <reference>` (or in the "
                    "admin, Social accounts → Add, provider "
                    f"'{settings.SSO_PROVIDER_ID}', UID = the reference); see docs/sso.md.",
                    status=409,
                ),
                detail=f"email {email}, subject {sociallogin.account.uid}",
            )

    def is_open_for_signup(self, request, sociallogin):
        # Users are created at their first SSO sign-in (allauth's own sign-up pages are not
        # routed, so there is no local self sign-up).
        return True

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        email = data.get("email") or ""
        wanted = data.get("username") or email.split("@")[0] or "user"
        user.username = unique_username(wanted)
        return user


def unique_username(wanted: str) -> str:
    """A free username close to what the provider suggests (alice, alice-2, …)."""
    user_model = get_user_model()
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "user"
    candidate, n = base, 1
    while user_model.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class AccountAdapter(DefaultAccountAdapter):
    def pre_login(self, request, user, **kwargs):
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        if sociallogin is not None:
            sso_roles_apply(user=user, groups=groups_from_claims(claims_of(sociallogin)))
        return super().pre_login(request, user, **kwargs)

    def login(self, request, user):
        # Sessions made by SSO load the user through ModelBackend (no password was checked).
        user.backend = "django.contrib.auth.backends.ModelBackend"
        super().login(request, user)

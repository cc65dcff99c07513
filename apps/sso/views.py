"""The two SSO endpoints: start a sign-in at the provider, and finish it when the provider sends
the person back. Thin wrappers over django-allauth's OpenID Connect views that (a) always verify
the ID token's signature and (b) answer a broken provider configuration with a clear page."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests
from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.sso import errors
from apps.sso.adapters import sso_app
from apps.sso.forms import LocalLoginForm, local_login_policy


class OIDCAdapter(OpenIDConnectOAuth2Adapter):
    def _decode_id_token(self, app, id_token):
        # allauth skips the signature when the token came straight from the token endpoint over
        # TLS (the spec allows it); we check it anyway, so a forged or mis-signed token is
        # refused even behind a TLS-intercepting proxy or on a plain-HTTP test provider.
        try:
            return jwtkit.verify_and_decode(
                credential=id_token,
                keys_url=self.openid_config["jwks_uri"],
                issuer=self.openid_config["issuer"],
                audience=app.client_id,
                lookup_kid=jwtkit.lookup_kid_jwk,
                verify_signature=True,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise OAuth2Error("Invalid id_token (no usable key)") from exc


def _discovery_url(adapter: OIDCAdapter) -> str:
    try:
        return adapter.get_provider().server_url
    except Exception:
        return "(unknown)"


# A discovery document that is not JSON, or lacks the endpoints it must name.
_UNREADABLE = (json.JSONDecodeError, KeyError, ValueError)


@login_not_required
@require_POST
def login(request, provider_id):
    """POST from the sign-in page's SSO button: off to the provider."""
    return _allauth_view(
        OAuth2LoginView, request, provider_id, broken=(requests.RequestException, *_UNREADABLE)
    )


@login_not_required
def callback(request, provider_id):
    """The redirect URI registered at the provider."""
    return _allauth_view(OAuth2CallbackView, request, provider_id, broken=_UNREADABLE)


def _allauth_view(view, request, provider_id, *, broken: tuple[type[Exception], ...]):
    """allauth's view with our adapter: 404 while SSO is not configured, and a page that names
    the discovery URL when the provider's configuration cannot be read (`broken`)."""
    adapter = OIDCAdapter(request, provider_id)
    try:
        return view.adapter_view(adapter)(request)
    except SocialApp.DoesNotExist:
        raise Http404("Single sign-on is not configured.") from None
    except broken as exc:
        failure = errors.discovery_failed(_discovery_url(adapter), exc)
        return errors.failure_page(request, failure, detail=repr(exc))


class LoginView(auth_views.LoginView):
    """The sign-in page: the SSO button when SSO is configured, the password form as allowed by
    SSO_LOCAL_LOGIN (shown to everyone, folded away as the administrators' break-glass, or not
    at all)."""

    authentication_form = LocalLoginForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        app = sso_app()
        context["sso"] = (
            {
                "name": app.name,
                "url": reverse("openid_connect_login", kwargs={"provider_id": app.provider_id}),
            }
            if app
            else None
        )
        context["local_login"] = local_login_policy() if app else "all"
        return context

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if sso_app() is not None:
            _allow_form_action_to_issuer(response)
        return response


def _allow_form_action_to_issuer(response) -> None:
    """The SSO button posts here, and we redirect to the provider: browsers apply the page's CSP
    form-action to that redirect too, so the issuer's origin joins 'self' on the sign-in page."""
    parts = urlsplit(settings.SSO_ISSUER_URL)
    origin = f"{parts.scheme}://{parts.netloc}"
    for attr, base in (
        ("_csp_config", settings.SECURE_CSP),
        ("_csp_ro_config", settings.SECURE_CSP_REPORT_ONLY),
    ):
        if base:
            policy = dict(getattr(response, attr, None) or base)
            policy["form-action"] = [*policy.get("form-action", []), origin]
            setattr(response, attr, policy)

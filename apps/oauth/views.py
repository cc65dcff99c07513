"""The OAuth endpoints django-oauth-toolkit serves, with what contextkb adds: a consent page in
the site's layout that names the client, the spaces and the scopes; limits on open client
registration; a Content-Security-Policy that lets the consent form return to the client."""

from __future__ import annotations

import json
import math
from urllib.parse import urlsplit

from django.conf import settings
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView, DynamicClientRegistrationView
from oauth2_provider.views.dynamic_client_registration import _error_response

from apps.core.throttling import IPRateThrottle
from apps.oauth.forms import ConsentForm

# RFC 7591 registration bodies are a few hundred bytes; anything near this is not a client.
MAX_REGISTRATION_BYTES = 16 * 1024
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
MAX_CLIENT_NAME = 100
GRANT_TYPES = {"authorization_code", "refresh_token"}
RESPONSE_TYPES = {"code"}


class ConsentView(AuthorizationView):
    """GET: sign in (the normal sign-in page), then the consent page. POST: the person's answer;
    the chosen spaces go on the authorization code, an unticked "write" narrows the scope."""

    template_name = "oauth/authorize.html"
    form_class = ConsentForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def get_initial(self):
        initial = super().get_initial()
        initial["allow_write"] = "write" in (initial.get("scope") or "").split()
        return initial

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        return _allow_form_action(response, self.oauth2_data.get("redirect_uri"))

    def form_valid(self, form):
        scopes = form.cleaned_data.get("scope", "").split()
        if not form.cleaned_data.get("allow_write"):
            scopes = [scope for scope in scopes if scope != "write"] or ["read"]
        form.cleaned_data["scope"] = " ".join(scopes)
        self.ckb_space_ids = [space.pk for space in form.cleaned_data.get("spaces") or []]
        agent = form.cleaned_data.get("agent")
        self.ckb_agent_id = agent.pk if agent is not None else None
        return super().form_valid(form)

    def form_invalid(self, form):
        errors = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in form.errors.items())
        error = {
            "error": "invalid_request",
            "description": f"The consent form was not valid ({errors}).",
        }
        return self.render_to_response({"error": error}, status=400)

    def redirect(self, redirect_to, application):
        # Errors found while validating the request come without the application; the toolkit
        # then checks the redirect against the site-wide schemes (https only), not the client's
        # own (loopback http too). oauthlib has already matched the URI to the client's list.
        if application is None:
            client_id = self.request.GET.get("client_id") or self.request.POST.get("client_id")
            application = get_application_model().objects.filter(client_id=client_id).first()
        return super().redirect(redirect_to, application)

    def create_authorization_response(self, request, scopes, credentials, allow):
        # Read by apps.oauth.validators when it writes the authorization code.
        credentials["ckb_space_ids"] = getattr(self, "ckb_space_ids", [])
        credentials["ckb_agent_id"] = getattr(self, "ckb_agent_id", None)
        return super().create_authorization_response(request, scopes, credentials, allow)


def _allow_form_action(response, redirect_uri: str | None):
    """Browsers apply CSP `form-action` to the redirect that follows a form post, so the consent
    page allows its own origin plus the origin of the (already validated) redirect URI."""
    if not redirect_uri or response.status_code != 200:
        return response
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return response
    origin = f"{parts.scheme}://{parts.netloc}"
    for name, attr in (("SECURE_CSP", "_csp_config"), ("SECURE_CSP_REPORT_ONLY", "_csp_ro_config")):
        policy = getattr(settings, name, None)
        if policy:
            policy = dict(policy)
            policy["form-action"] = [*policy.get("form-action", []), origin]
            setattr(response, attr, policy)
    return response


def _registration_problem(body: bytes) -> str | None:
    """Why a registration body is refused before the toolkit sees it, or None."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return "Request body must be valid JSON"
    if not isinstance(data, dict):
        return "Request body must be a JSON object"
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        return "redirect_uris must be a non-empty array"
    if len(uris) > MAX_REDIRECT_URIS:
        return f"At most {MAX_REDIRECT_URIS} redirect_uris"
    if not all(isinstance(uri, str) and 0 < len(uri) <= MAX_URI_LENGTH for uri in uris):
        return f"Each redirect_uri must be a string of at most {MAX_URI_LENGTH} characters"
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_CLIENT_NAME:
        return f"client_name must be a string of at most {MAX_CLIENT_NAME} characters"
    grant_types = data.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not set(grant_types) <= GRANT_TYPES:
        return "Only the authorization_code and refresh_token grant types are supported"
    response_types = data.get("response_types", ["code"])
    if not isinstance(response_types, list) or not set(response_types) <= RESPONSE_TYPES:
        return "Only the code response type is supported"
    return None


class RegistrationRateThrottle(IPRateThrottle):
    """Registrations per client address (API_THROTTLE_RATES["oauth_register"])."""

    scope = "oauth_register"


class RegistrationView(DynamicClientRegistrationView):
    """RFC 7591 open registration (MCP clients register themselves), for authorization-code
    clients only, with bounded bodies and a rate limit per address. Errors use RFC 7591's
    shape."""

    def post(self, request, *args, **kwargs):
        throttle = RegistrationRateThrottle()
        if not throttle.allow_request(request, None):
            seconds = max(1, math.ceil(throttle.wait() or 1))
            response = _error_response(
                "too_many_requests",
                f"Too many client registrations from this address; retry in {seconds} seconds",
                status=429,
            )
            response["Retry-After"] = str(seconds)
            return response
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_REGISTRATION_BYTES:
            return _error_response(
                "invalid_client_metadata",
                f"The registration body is larger than {MAX_REGISTRATION_BYTES} bytes",
            )
        body = request.read(MAX_REGISTRATION_BYTES + 1)
        if len(body) > MAX_REGISTRATION_BYTES:
            return _error_response(
                "invalid_client_metadata",
                f"The registration body is larger than {MAX_REGISTRATION_BYTES} bytes",
            )
        request._body = body  # the toolkit reads request.body
        problem = _registration_problem(body)
        if problem:
            return _error_response("invalid_client_metadata", problem)
        return super().post(request, *args, **kwargs)

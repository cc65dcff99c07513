"""`Authorization: Bearer ckb_…` authentication for DRF (also reused by the MCP server).

`request.user` is the token's user and `request.auth` the ApiToken, so views pass the token (not
the user) to `visible_to()` and the services, and the token's scope and spaces apply.

OAuth access tokens (apps.oauth) need no class of their own: each is backed by an ApiToken whose
hash is the access token's, with the scope and spaces of the consent, so this class (and the MCP
server's check) authenticates them as that ApiToken.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions

from apps.accounts.models import ApiToken


def principal_of(request) -> object:
    """The principal for authorization: the API token when one was used, else the user."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else request.user


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Looks only at `Authorization: Bearer …`; no header means "not this scheme"."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: use `Bearer <token>`."
            )
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        from apps.accounts.services import token_authenticate  # no import-time side effects

        token = token_authenticate(plain)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if token.agent_id is not None:
            from apps.agents.scope import check_rest_request

            # A registered agent: only its declared REST scopes, spaces and paths (audited).
            check_rest_request(request, token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to anonymous requests.
        return 'Bearer realm="api"'

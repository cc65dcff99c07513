"""What django-oauth-toolkit does not keep: the spaces a person chose on the consent page, and
the API token an OAuth client acts as.

Every access token issued by the OAuth flow is backed by one `ApiToken` row (its hash is the
access token's SHA-256, its scope, spaces and expiry those of the grant), so the REST API, MCP
and `apps.accounts.access` treat an OAuth client exactly like an API token of the same person.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication
from oauth2_provider.settings import oauth2_settings

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class Application(AbstractApplication):
    """An OAuth client: an MCP client that registered itself (RFC 7591) or one an admin added."""

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def get_allowed_schemes(self) -> list[str]:
        # https everywhere; plain http only for a native client's loopback listener (RFC 8252),
        # which clean() enforces. The site-wide setting stays https-only (RFC 9700 2.1).
        return ["https", "http"]

    def clean(self) -> None:
        super().clean()
        for uri in self.redirect_uris.split():
            parts = urlsplit(uri)
            if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
                raise ValidationError(
                    {
                        "redirect_uris": (
                            "An http redirect URI must be a loopback address (127.0.0.1, [::1] or"
                            " localhost); use https otherwise."
                        )
                    }
                )


class GrantSpaces(models.Model):
    """The spaces chosen on the consent page, carried by an authorization code to its tokens."""

    grant = models.OneToOneField(
        oauth2_settings.GRANT_MODEL, on_delete=models.CASCADE, related_name="ckb_spaces"
    )
    # Empty means every space the person can see (as for API tokens).
    spaces = models.ManyToManyField("accounts.Space", blank=True, related_name="+")
    # The registered agent the person connected the client as (None: as the person).
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    def __str__(self) -> str:
        return f"spaces of grant {self.grant_id}"


class Connection(models.Model):
    """An OAuth client a person connected: one chain of refreshed tokens, acting as one ApiToken."""

    application = models.ForeignKey(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="ckb_connections"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_connections"
    )
    # The principal every door sees. Its hash follows the current access token on each refresh;
    # revoking it (web UI, API, RFC 7009) disconnects the client. An agents app can tie a
    # registered agent to this token (or to this row) without touching the OAuth flow.
    api_token = models.OneToOneField(
        "accounts.ApiToken", on_delete=models.CASCADE, related_name="oauth_connection"
    )
    # django-oauth-toolkit's refresh-token family: the same across rotations, so a refresh finds
    # its connection.
    token_family = models.UUIDField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.application} for {self.user}"

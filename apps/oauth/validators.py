"""django-oauth-toolkit's validator, plus what contextkb needs: the consent's spaces ride on the
authorization code, each token chain is a `Connection` acting as one ApiToken, and a revoked
connection (or a replayed refresh token) ends the chain."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator

from apps.oauth import services
from apps.oauth.models import Connection, GrantSpaces


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _connection_of_refresh_token(plain: str) -> Connection | None:
    family = (
        get_refresh_token_model()
        .objects.filter(token_checksum=_checksum(plain))
        .order_by(F("revoked").desc(nulls_first=True))
        .values_list("token_family", flat=True)
        .first()
    )
    if family is None:
        return None
    return (
        Connection.objects.select_related("api_token", "user", "application")
        .filter(token_family=family)
        .first()
    )


class ContextKBValidator(OAuth2Validator):
    def _create_authorization_code(self, request, code, expires=None):
        grant = super()._create_authorization_code(request, code, expires)
        chosen = GrantSpaces.objects.create(
            grant=grant, agent_id=getattr(request, "ckb_agent_id", None)
        )
        chosen.spaces.set(getattr(request, "ckb_space_ids", None) or [])
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        chosen = GrantSpaces.objects.filter(
            grant__in=get_grant_model().objects.filter(code=code, application=client)
        ).first()
        request.ckb_space_ids = (
            list(chosen.spaces.values_list("id", flat=True)) if chosen is not None else []
        )
        request.ckb_agent_id = chosen.agent_id if chosen is not None else None
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        connection = _connection_of_refresh_token(refresh_token)
        if connection is None:
            return False
        if not valid:
            # A rotated refresh token replayed: the toolkit revoked the whole family (reuse
            # protection), so whoever holds the chain is cut off at every door too.
            family_alive = (
                get_refresh_token_model()
                .objects.filter(token_family=connection.token_family, revoked__isnull=True)
                .exists()
            )
            if not family_alive:
                services.connection_revoke(connection=connection, reason="refresh token reused")
            return False
        # Revoked from the API tokens page, or the person was deactivated.
        return connection.api_token.revoked_at is None and connection.user.is_active

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous):
        refresh_token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous
        )
        request.ckb_token_family = refresh_token.token_family
        return refresh_token

    def _save_bearer_token(self, token, request, *args, **kwargs):
        previous = getattr(request, "refresh_token_instance", None)
        family = getattr(previous, "token_family", None)
        super()._save_bearer_token(token, request, *args, **kwargs)
        expires_at = timezone.now() + dt.timedelta(seconds=int(token.get("expires_in") or 0))
        if request.grant_type == "authorization_code":
            services.connection_open(
                application=request.client,
                user=request.user,
                oauth_scope=token["scope"],
                space_ids=getattr(request, "ckb_space_ids", []),
                agent_id=getattr(request, "ckb_agent_id", None),
                access_token=token["access_token"],
                expires_at=expires_at,
                token_family=request.ckb_token_family,
            )
        elif request.grant_type == "refresh_token":
            connection = Connection.objects.filter(token_family=family).first()
            if connection is not None:
                services.connection_refresh(
                    connection=connection,
                    access_token=token["access_token"],
                    expires_at=expires_at,
                )

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        """RFC 7009: revoking either the access or the refresh token disconnects the client."""
        application_pk = getattr(request.client, "pk", None)
        connection = None
        if application_pk is not None:
            connection = (
                Connection.objects.select_related("api_token", "user", "application")
                .filter(application_id=application_pk, api_token__token_hash=_checksum(token))
                .first()
            )
            if connection is None:
                found = _connection_of_refresh_token(token)
                if found is not None and found.application_id == application_pk:
                    connection = found
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        if connection is not None:
            services.connection_revoke(connection=connection, reason="revoked by the client")

"""OAuth connections: the API token an OAuth client acts as, opened on the first token,
moved along on each refresh, revoked by RFC 7009 or from the API tokens page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model

from apps.accounts.models import ApiToken, Space, User
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.oauth.models import Connection

WRITE_SCOPE = "write"


def generate_access_token(request=None) -> str:
    """django-oauth-toolkit's ACCESS_TOKEN_GENERATOR: the `ckb_…` format of API tokens, so the
    bearer check of every door (`token_authenticate`) recognises OAuth access tokens."""
    return ApiToken.generate()


def api_scope(oauth_scope: str) -> str:
    """The ApiToken scope for an OAuth scope string: `write` means read and write."""
    return ApiToken.Scope.READ_WRITE if WRITE_SCOPE in oauth_scope.split() else ApiToken.Scope.READ


def _token_name(application) -> str:
    return f"OAuth: {application.name or application.client_id}"[:100]


@transaction.atomic
def connection_open(
    *,
    application,
    user: User,
    oauth_scope: str,
    space_ids: Iterable[int],
    access_token: str,
    expires_at: dt.datetime,
    token_family,
    agent_id: int | None = None,
) -> Connection:
    """The first token of an authorization: an ApiToken with the consent's scope and spaces.
    Connected as a registered agent (one the person answers for), it is that agent's token, as
    the agent's own tokens are: its spaces, read-only for records, bound by its scope."""
    from apps.agents.models import Agent

    agent = (
        Agent.objects.filter(pk=agent_id, accountable=user, disabled_at__isnull=True).first()
        if agent_id is not None
        else None
    )
    # The consent form only offers the person's spaces; keep only those still visible now.
    spaces = list(Space.objects.visible_to(user).filter(id__in=list(space_ids)))
    if agent is not None:
        spaces = list(agent.spaces.all())
    token = ApiToken.objects.create(
        user=user,
        name=_token_name(application) + (f" as {agent.name}" if agent else ""),
        token_hash=ApiToken.hash(access_token),
        prefix=access_token[:12],
        scope=ApiToken.Scope.READ if agent is not None else api_scope(oauth_scope),
        expires_at=expires_at,
        agent=agent,
    )
    token.spaces.set(spaces)
    connection = Connection.objects.create(
        application=application, user=user, api_token=token, token_family=token_family
    )
    audit_log(
        kind=AuditEvent.Kind.OAUTH_TOKEN_ISSUED,
        actor=user,
        token=token,
        message=f"OAuth client {application.name or application.client_id!r} connected",
        details={
            "client_id": application.client_id,
            "scope": token.scope,
            "spaces": sorted(space.slug for space in spaces),
            "agent": agent.slug if agent is not None else None,
        },
    )
    return connection


def connection_refresh(*, connection: Connection, access_token: str, expires_at: dt.datetime):
    """A refreshed access token replaces the previous one at every door at once."""
    ApiToken.objects.filter(pk=connection.api_token_id, revoked_at__isnull=True).update(
        token_hash=ApiToken.hash(access_token), prefix=access_token[:12], expires_at=expires_at
    )


def connection_revoke(*, connection: Connection, reason: str) -> None:
    """Disconnect: the API token stops working and no refresh token of the chain is honoured.
    Idempotent."""
    with transaction.atomic():
        revoked = ApiToken.objects.filter(
            pk=connection.api_token_id, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        get_refresh_token_model().revoke_family(connection.token_family)
    if revoked:
        audit_log(
            kind=AuditEvent.Kind.OAUTH_TOKEN_REVOKED,
            actor=connection.user,
            token=connection.api_token,
            message=(
                f"OAuth client {connection.application.name or connection.application.client_id!r}"
                f" disconnected ({reason})"
            ),
            details={"client_id": connection.application.client_id, "reason": reason},
        )

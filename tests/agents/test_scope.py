"""Registered agents stay inside their declared spaces, paths, tools and scopes: a call outside
is refused with a clear error and an audit entry; registration is for space admins."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.agents import services
from apps.agents.models import AgentEvent
from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden, InvalidInput

pytestmark = pytest.mark.django_db


def _client(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_context_for_paths_inside_the_agents_paths_is_served(agent_token):
    _, plain = agent_token
    response = _client(plain).get("/api/v1/context/", {"paths": "services/billing/api.py"})
    assert response.status_code == 200, response.content
    assert not AuditEvent.objects.filter(kind="agent_refused").exists()


def test_a_path_outside_the_agents_paths_is_refused_and_audited(agent_token, agent):
    token, plain = agent_token
    response = _client(plain).post(
        "/api/v1/context/", {"q": "deploy", "paths": ["services/auth/login.py"]}, format="json"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "agent_out_of_scope"
    assert "'services/auth/login.py' is outside its paths" in error["message"]
    assert error["details"]["allowed_paths"] == ["services/billing/**"]
    event = AuditEvent.objects.get(kind="agent_refused")
    assert event.token == token and event.path == "/api/v1/context/"
    assert event.details["paths"] == ["services/auth/login.py"]
    assert AgentEvent.objects.get(agent=agent).kind == "refused"


def test_a_space_or_rest_scope_outside_the_declaration_is_refused(agent_token, other_space):
    _, plain = agent_token
    client = _client(plain)
    space = client.get("/api/v1/context/", {"q": "retries", "spaces": other_space.slug})
    assert space.status_code == 403
    assert "not registered for the space 'elsewhere'" in space.json()["error"]["message"]
    scope = client.get("/api/v1/records/")
    assert scope.status_code == 403
    assert scope.json()["error"]["details"]["scope"] == "records"
    assert AuditEvent.objects.filter(kind="agent_refused").count() == 2


def test_revoked_expired_and_disabled_agents_are_refused(agent, agent_token, admin_user):
    token, plain = agent_token
    _, second = services.agent_token_create(
        agent=agent,
        actor=admin_user,
        name="short",
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    services.agent_set_disabled(agent=agent, actor=admin_user, disabled=True)
    disabled = _client(second).get("/api/v1/me/")
    assert disabled.status_code == 403 and "disabled" in disabled.json()["error"]["message"]
    services.agent_set_disabled(agent=agent, actor=admin_user, disabled=False)
    services.agent_token_revoke(agent=agent, token=token, actor=admin_user)
    assert _client(plain).get("/api/v1/me/").status_code == 401
    assert _client(second).get("/api/v1/me/").status_code == 200


def test_an_agents_rate_limit_counts_over_all_its_tokens(agent, agent_token, admin_user, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    services.agent_update(
        agent=agent, actor=admin_user, spaces=list(agent.spaces.all()), rate_limit="2/minute"
    )
    _, first = agent_token
    _, second = services.agent_token_create(agent=agent, actor=admin_user, name="other")
    assert _client(first).get("/api/v1/me/").status_code == 200
    assert _client(second).get("/api/v1/me/").status_code == 200
    throttled = _client(first).get("/api/v1/me/")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"


def test_only_admins_of_every_space_register_an_agent(space, owner, outsider, other_space):
    with pytest.raises(Forbidden):
        services.agent_create(actor=owner, name="Mine", accountable=owner, spaces=[space])
    with pytest.raises(InvalidInput) as bad:
        services.agent_create(
            actor=outsider,
            name="x",
            accountable=owner,  # not a member of `elsewhere`
            spaces=[other_space],
            allowed_tools=["rm_rf"],
            rate_limit="lots",
        )
    assert set(bad.value.details) == {"accountable", "allowed_tools", "rate_limit"}


def test_changing_the_agents_spaces_rescopes_its_tokens(agent, agent_token, admin_user, space):
    token, _ = agent_token
    assert list(token.spaces.all()) == [space]
    assert token.scope == "read"
    services.agent_update(agent=agent, actor=admin_user, spaces=[space], path_globs=[])
    agent.refresh_from_db()
    assert agent.path_globs == []

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Membership
from apps.records import services
from tests.factories import MembershipFactory, make_record, make_token


@pytest.fixture(autouse=True)
def _api_settings(settings):
    # Generous limits so only the throttling tests hit them; fresh counters per test.
    settings.API_THROTTLE_RATES = {"token": "100000/minute", "ip": "100000/minute"}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient()


# force_login would pick the first backend (a lockout check that loads no users).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def bearer(plain: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


@pytest.fixture
def rw_token(owner):
    return make_token(owner, scope=ApiToken.Scope.READ_WRITE, name="rw")[1]


@pytest.fixture
def read_token(owner):
    return make_token(owner, scope=ApiToken.Scope.READ, name="read")[1]


@pytest.fixture
def world(space, owner, viewer, admin_user, outsider, other_space):
    """A small space with records, a link and an archived record; tokens of every kind."""
    dec1 = make_record(space=space, actor=owner, title="Use PostgreSQL", owner_user=owner)
    dec2 = make_record(space=space, actor=owner, title="Use pgvector", owner_user=owner)
    gone = make_record(space=space, actor=owner, title="Old idea", owner_user=owner)
    services.record_archive(record=gone, actor=owner)
    link = services.record_link(source=dec2, target=dec1, type="relates_to", actor=owner)
    # The owner is also an editor elsewhere, so a token scoped there is a real, usable token.
    MembershipFactory(user=owner, space=other_space, role=Membership.Role.EDITOR)
    past = timezone.now() - dt.timedelta(days=1)
    tokens = {
        "read": make_token(owner, scope=ApiToken.Scope.READ)[1],
        "rw": make_token(owner, scope=ApiToken.Scope.READ_WRITE)[1],
        "other_space": make_token(owner, scope=ApiToken.Scope.READ_WRITE, spaces=[other_space])[1],
        "expired": make_token(owner, scope=ApiToken.Scope.READ_WRITE, expires_at=past)[1],
        "revoked": make_token(owner, scope=ApiToken.Scope.READ_WRITE, revoked_at=past)[1],
    }
    return {
        "space": space,
        "dec1": dec1,
        "dec2": dec2,
        "archived": gone,
        "link": link,
        "tokens": tokens,
        "users": {
            "outsider": outsider,
            "viewer": viewer,
            "editor": owner,
            "admin": admin_user,
        },
    }

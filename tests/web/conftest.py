import pytest

from apps.accounts.models import Membership
from apps.records import services
from tests.factories import MembershipFactory, make_record


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return login


@pytest.fixture
def owner_admin(space):
    """An admin of the space (can manage members and verify anything)."""
    return MembershipFactory(space=space, role=Membership.Role.ADMIN, user__username="boss").user


@pytest.fixture
def decision(space, owner):
    return make_record(
        space=space,
        actor=owner,
        kind="decision",
        title="Use PostgreSQL for the ledger",
        summary="One database with serialisable transactions.",
        body="## Context\nLedgers must not lose money.\n\n## Decision\nUse **PostgreSQL**.",
        status="accepted",
        owner_user=owner,
        tags=["ledger", "database"],
        anchors=["services/ledger/**"],
    )


@pytest.fixture
def constraint(space, owner):
    return make_record(
        space=space,
        actor=owner,
        kind="constraint",
        title="Money is integer minor units",
        status="accepted",
        owner_user=owner,
        tags=["money"],
        anchors=["services/payouts/**"],
    )


@pytest.fixture
def linked(decision, constraint, owner):
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    return decision

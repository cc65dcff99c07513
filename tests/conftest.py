import contextlib
import os

import pytest

from apps.accounts.models import Membership
from tests.factories import MembershipFactory, SpaceFactory


@pytest.fixture
def space(db):
    return SpaceFactory(name="Payments", slug="payments")


@pytest.fixture
def owner(space):
    """An editor of the space who owns the records in the tests."""
    return MembershipFactory(space=space, role=Membership.Role.EDITOR, user__username="owner").user


@pytest.fixture
def teammate(space):
    return MembershipFactory(
        space=space, role=Membership.Role.EDITOR, user__username="teammate"
    ).user


@pytest.fixture
def viewer(space):
    return MembershipFactory(space=space, role=Membership.Role.VIEWER, user__username="viewer").user


@pytest.fixture
def admin_user(space):
    return MembershipFactory(
        space=space, role=Membership.Role.ADMIN, user__username="spaceadmin"
    ).user


@pytest.fixture
def outsider(db):
    """A user with their own space, who must see nothing of `space`."""
    other = SpaceFactory(name="Elsewhere", slug="elsewhere")
    return MembershipFactory(
        space=other, role=Membership.Role.ADMIN, user__username="outsider"
    ).user


@pytest.fixture
def other_space(outsider):
    return outsider.memberships.get().space


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # Production uses the manifest storage, which needs collectstatic; tests render
    # {% static %} (and the live server serves files) straight from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# Tasks the tests enqueue without a worker of their own (embeddings after a commit, …) go to a
# queue of this run, purged at the end: never to the `celery` queue that a `make run` worker on
# the same machine reads (it would embed record ids of the test database against its own).
TEST_QUEUE = f"contextkb-tests-{os.getpid()}"


def pytest_configure(config):
    from contextkb.celery import app

    app.conf.task_default_queue = TEST_QUEUE


def pytest_sessionfinish(session, exitstatus):
    from contextkb.celery import app

    with app.connection_for_write() as connection, contextlib.suppress(Exception):
        connection.default_channel.queue_purge(TEST_QUEUE)

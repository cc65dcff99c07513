import pytest

from apps.accounts.models import Membership
from tests.factories import MembershipFactory


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.SITE_URL = "http://testserver"
    settings.REMINDERS_DIGEST_HOUR = 0
    settings.DRIFT_WEBHOOK_SECRET = "s3cret-for-tests"


@pytest.fixture
def space_admin(space):
    return MembershipFactory(space=space, role=Membership.Role.ADMIN, user__username="boss").user

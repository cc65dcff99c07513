import pytest

from apps.agents import services
from tests.e2e.conftest import browser, new_page, shoot  # noqa: F401 - headless Chromium fixtures
from tests.reminders.conftest import smtp_inbox  # noqa: F401 - the aiosmtpd inbox fixture


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "http://testserver"
    settings.REMINDERS_DIGEST_HOUR = 0


@pytest.fixture
def agent(space, owner, admin_user):
    """A billing agent: payments space, services/billing/**, the default tools and scopes; its
    accountable person is `owner`, registered by the space admin."""
    return services.agent_create(
        actor=admin_user,
        name="Billing bot",
        purpose="Keeps the billing service's retries tidy.",
        accountable=owner,
        spaces=[space],
        path_globs=["services/billing/**"],
    )


@pytest.fixture
def agent_token(agent, admin_user):
    """(token, plain) of the agent."""
    return services.agent_token_create(agent=agent, actor=admin_user, name="ci")

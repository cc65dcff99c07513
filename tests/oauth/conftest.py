import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Registration is rate-limited per address, and every test client is 127.0.0.1.
    cache.clear()
    yield
    cache.clear()

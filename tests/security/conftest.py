import pytest


@pytest.fixture
def login(client):
    """Post the sign-in form as a browser would, from a given address."""

    def _login(username, password, ip="203.0.113.7"):
        return client.post(
            "/accounts/login/",
            {"username": username, "password": password},
            REMOTE_ADDR=ip,
        )

    return _login

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


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; pages here only need {% static %} to resolve.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

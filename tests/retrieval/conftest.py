import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.retrieval import search, tasks, usage
from apps.retrieval import services as retrieval_services
from tests.factories import make_record, make_token


@pytest.fixture(autouse=True)
def _wordllama(settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"


@pytest.fixture
def usage_log(monkeypatch):
    """Run the usage-log task synchronously, as the worker would, and collect payloads."""
    payloads = []

    def dispatch(payload):
        payloads.append(payload)
        tasks.log_context_request(payload)

    monkeypatch.setattr(usage, "dispatch", dispatch)
    return payloads


@pytest.fixture(autouse=True)
def _provider_up(monkeypatch):
    # A provider failure in one test must not switch vectors off for the next.
    monkeypatch.setattr(search, "_provider_down_until", 0.0)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    # Tests never publish to a broker: usage entries are dropped unless `usage_log` is used.
    monkeypatch.setattr(usage, "dispatch", lambda payload: None)


@pytest.fixture
def add(space, owner):
    """Create a record (through the service) and embed it, as the worker would after commit."""

    def _add(title, *, kind="decision", embed=True, **fields):
        fields.setdefault("status", "accepted")
        record = make_record(space=space, actor=owner, kind=kind, title=title, **fields)
        if embed:
            retrieval_services.embed_records(record_ids=[record.pk])
        return record

    return _add


@pytest.fixture
def token(owner, space):
    return make_token(owner, spaces=[space])


@pytest.fixture
def api(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[1]}", HTTP_USER_AGENT="test-agent/1.0")
    return client


@pytest.fixture
def read_token(viewer, space):
    return make_token(viewer, scope=ApiToken.Scope.READ, spaces=[space])

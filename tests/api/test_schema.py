"""The OpenAPI schema, its docs page, and schemathesis fuzzing every operation against it."""

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.models import ApiToken
from apps.records import services
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

# Bounded so the whole run stays within about a minute on two cores.
EXAMPLES_PER_OPERATION = 8


def test_schema_is_public_json_and_documents_errors_and_auth(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    patch = schema["paths"]["/api/v1/records/{id}/"]["patch"]
    assert {"400", "401", "403", "404", "412", "428", "429"} <= set(patch["responses"])
    error = patch["responses"]["412"]["content"]["application/json"]["schema"]["$ref"]
    assert error == "#/components/schemas/Error"
    if_match = [p for p in patch["parameters"] if p["name"] == "If-Match"]
    assert if_match and if_match[0]["required"] is True
    list_params = {p["name"] for p in schema["paths"]["/api/v1/records/"]["get"]["parameters"]}
    assert {"space", "kind", "status", "owner", "tag", "freshness", "anchor", "q"} <= list_params
    assert {"updated_since", "fields", "page", "page_size"} <= list_params


def test_docs_page_works_offline_with_vendored_assets(client):
    html = client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


@pytest.fixture
def fuzz_world(space, owner, admin_user):
    """Real objects for the path parameters, so fuzzed requests reach real records."""
    first = make_record(space=space, actor=owner, title="Use PostgreSQL", owner_user=owner)
    second = make_record(space=space, actor=owner, title="Use pgvector", anchors=["db/**"])
    link = services.record_link(source=second, target=first, type="relates_to", actor=owner)
    _, plain = make_token(admin_user, scope=ApiToken.Scope.READ_WRITE, name="fuzz")
    return {"record": first, "link": link, "token": plain}


@pytest.fixture
def in_process_requests(db):
    # Requests run in-process inside the test's transaction; Django must not close the
    # connection at the end of each one (its test client does the same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# The live schema, fetched from the WSGI application (generating it needs no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, fuzz_world, in_process_requests):
    params = case.path_parameters or {}
    if "id" in params:
        is_link = case.operation.path.startswith("/api/v1/links/")
        params["id"] = (fuzz_world["link"] if is_link else fuzz_world["record"]).pk
    if "slug" in params or "space_slug" in params:
        params.update({k: "payments" for k in ("slug", "space_slug") if k in params})
    if "key" in params:
        params["key"] = fuzz_world["record"].key
    if "number" in params:
        params["number"] = 1
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_world['token']}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )

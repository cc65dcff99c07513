"""Every API endpoint against every kind of caller, with the status each must get.

The table covers every operation in the OpenAPI schema (a test below fails when an endpoint is
added without a row here), plus the schema and docs pages themselves.
"""

import io
import zipfile

import pytest
import yaml
from django.core.management import call_command

from apps.interchange import services as interchange
from apps.records import services as record_services
from apps.records.models import Record
from tests.api.conftest import MODEL_BACKEND, bearer
from tests.factories import make_record

pytestmark = pytest.mark.django_db

CALLERS = (
    "anonymous",
    "outsider",
    "viewer",
    "editor",
    "admin",
    "read_token",
    "rw_token",
    "other_space_token",
    "expired_token",
    "revoked_token",
)


def adr_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "docs/adr/0001-use-postgres.md",
            "# 1. Use PostgreSQL\n\n## Status\n\nAccepted\n\n## Context\n\nWe need a database.\n",
        )
    return buffer.getvalue()


DRIFT = {"repository": "acme/pay", "commit": "abc123", "changed_paths": ["db/schema.sql"]}

# name: (method, path in the schema, concrete path, body). A body given as a callable is sent
# as multipart form data; anything else as JSON.
ENDPOINTS = {
    "spaces list": ("get", "/api/v1/spaces/", "/api/v1/spaces/", None),
    "space read": ("get", "/api/v1/spaces/{slug}/", "/api/v1/spaces/payments/", None),
    "space create": ("post", "/api/v1/spaces/", "/api/v1/spaces/", {"name": "New area"}),
    "space update": (
        "patch",
        "/api/v1/spaces/{slug}/",
        "/api/v1/spaces/payments/",
        {"description": "Money"},
    ),
    "records list": ("get", "/api/v1/records/", "/api/v1/records/", None),
    "record read": ("get", "/api/v1/records/{id}/", "/api/v1/records/{dec1}/", None),
    "record by key": (
        "get",
        "/api/v1/records/by-key/{space_slug}/{key}/",
        "/api/v1/records/by-key/payments/DEC-1/",
        None,
    ),
    "record create": (
        "post",
        "/api/v1/records/",
        "/api/v1/records/",
        {"space": "payments", "kind": "constraint", "title": "No PII in logs"},
    ),
    "record replace": (
        "put",
        "/api/v1/records/{id}/",
        "/api/v1/records/{dec1}/",
        {"title": "Use PostgreSQL 18"},
    ),
    "record patch": (
        "patch",
        "/api/v1/records/{id}/",
        "/api/v1/records/{dec1}/",
        {"summary": "One database"},
    ),
    "record archive": (
        "post",
        "/api/v1/records/{id}/archive/",
        "/api/v1/records/{dec1}/archive/",
        None,
    ),
    "record unarchive": (
        "post",
        "/api/v1/records/{id}/unarchive/",
        "/api/v1/records/{archived}/unarchive/",
        None,
    ),
    "record links": ("get", "/api/v1/records/{id}/links/", "/api/v1/records/{dec1}/links/", None),
    "record link create": (
        "post",
        "/api/v1/records/{id}/links/",
        "/api/v1/records/{dec1}/links/",
        {"target": "{dec2}", "type": "depends_on"},
    ),
    "revisions list": (
        "get",
        "/api/v1/records/{id}/revisions/",
        "/api/v1/records/{dec1}/revisions/",
        None,
    ),
    "revision read": (
        "get",
        "/api/v1/records/{id}/revisions/{number}/",
        "/api/v1/records/{dec1}/revisions/1/",
        None,
    ),
    "revision diff": (
        "get",
        "/api/v1/records/{id}/revisions/{number}/diff/",
        "/api/v1/records/{dec1}/revisions/1/diff/",
        None,
    ),
    "revision restore": (
        "post",
        "/api/v1/records/{id}/revisions/{number}/restore/",
        "/api/v1/records/{dec1}/revisions/1/restore/",
        None,
    ),
    "record verify": (
        "post",
        "/api/v1/records/{id}/verify/",
        "/api/v1/records/{dec1}/verify/",
        {"note": "Checked"},
    ),
    "record supersede": (
        "post",
        "/api/v1/records/{id}/supersede/",
        "/api/v1/records/{dec1}/supersede/",
        {"successor": "{dec2}"},
    ),
    "links list": ("get", "/api/v1/links/", "/api/v1/links/", None),
    "link read": ("get", "/api/v1/links/{id}/", "/api/v1/links/{link}/", None),
    "link create": (
        "post",
        "/api/v1/links/",
        "/api/v1/links/",
        {"source": "{dec1}", "target": "{dec2}", "type": "amends"},
    ),
    "link delete": ("delete", "/api/v1/links/{id}/", "/api/v1/links/{link}/", None),
    "me": ("get", "/api/v1/me/", "/api/v1/me/", None),
    "context": ("get", "/api/v1/context/", "/api/v1/context/?q=database", None),
    "context post": (
        "post",
        "/api/v1/context/",
        "/api/v1/context/",
        {"q": "which database", "paths": ["db/schema.sql"]},
    ),
    "agents.md": (
        "get",
        "/api/v1/context/agents.md",
        "/api/v1/context/agents.md?space=payments",
        None,
    ),
    "gap report": (
        "post",
        "/api/v1/context/gaps/",
        "/api/v1/context/gaps/",
        {"query": "how do refunds work", "space": "payments"},
    ),
    "drift": ("post", "/api/v1/drift/", "/api/v1/drift/", DRIFT),
    "rules": ("get", "/api/v1/rules/", "/api/v1/rules/", None),
    "context bundle": (
        "get",
        "/api/v1/context/bundles/{bundle_id}/",
        "/api/v1/context/bundles/{bundle}/",
        None,
    ),
    "changes assess": (
        "post",
        "/api/v1/changes/assess/",
        "/api/v1/changes/assess/",
        {"paths": ["db/schema.sql"], "title": "Change the schema"},
    ),
    "drift github": ("post", "/api/v1/drift/github/", "/api/v1/drift/github/", DRIFT),
    "drift gitlab": ("post", "/api/v1/drift/gitlab/", "/api/v1/drift/gitlab/", DRIFT),
    "import": (
        "post",
        "/api/v1/import/",
        "/api/v1/import/",
        lambda: {"space": "payments", "file": io.BytesIO(adr_zip()), "dry_run": "true"},
    ),
    "import progress": ("get", "/api/v1/import/{uid}/", "/api/v1/import/{job}/", None),
    "sync state": ("get", "/api/v1/sync/{slug}/", "/api/v1/sync/payments/", None),
    "sync settings": (
        "put",
        "/api/v1/sync/{slug}/",
        "/api/v1/sync/payments/",
        {"remote_url": "http://127.0.0.1:9/kb.git", "branch": "main", "folder": "docs/adr"},
    ),
    # The remote cannot be reached: the run answers 200 with a failed outcome.
    "sync pull": ("post", "/api/v1/sync/{slug}/pull/", "/api/v1/sync/payments/pull/", None),
    "sync push": ("post", "/api/v1/sync/{slug}/push/", "/api/v1/sync/payments/push/", None),
    "sync run": ("post", "/api/v1/sync/{slug}/sync/", "/api/v1/sync/payments/sync/", None),
    "proposals list": ("get", "/api/v1/proposals/", "/api/v1/proposals/", None),
    "proposal create": (
        "post",
        "/api/v1/proposals/",
        "/api/v1/proposals/",
        {"kind": "new", "title": "Retry with backoff"},
    ),
    "proposal read": ("get", "/api/v1/proposals/{id}/", "/api/v1/proposals/1/", None),
    "schema": ("get", None, "/api/schema/", None),
    "docs": ("get", None, "/api/docs/", None),
}

#        anon outs view edit admn read rw   othr expd revk
READ = (401, 404, 200, 200, 200, 200, 200, 404, 401, 401)
LIST = (401, 200, 200, 200, 200, 200, 200, 200, 401, 401)
# Public, but a token that is presented must be valid.
PUBLIC = (200, 200, 200, 200, 200, 200, 200, 200, 401, 401)
# The webhooks authenticate by a shared secret (unset here), never by user or token.
WEBHOOK = (403,) * 10
AGENTS_ONLY = (401, 403, 403, 403, 403, 403, 403, 403, 401, 401)


def write(ok):
    return (401, 404, 403, ok, ok, 403, ok, 404, 401, 401)


EXPECTED = {
    "spaces list": LIST,
    "space read": READ,
    # Site admins (staff) create spaces; no caller in this table is staff.
    "space create": (401, 403, 403, 403, 403, 403, 403, 403, 401, 401),
    # Only space admins change a space.
    "space update": (401, 404, 403, 403, 200, 403, 403, 404, 401, 401),
    "records list": LIST,
    "record read": READ,
    "record by key": READ,
    "record create": write(201),
    "record replace": write(200),
    "record patch": write(200),
    "record archive": write(200),
    "record unarchive": write(200),
    "record links": READ,
    "record link create": write(201),
    "revisions list": READ,
    "revision read": READ,
    "revision diff": READ,
    "revision restore": write(200),
    "record verify": write(201),
    "record supersede": write(201),
    "links list": LIST,
    "link read": READ,
    "link create": write(201),
    "link delete": write(204),
    "me": LIST,
    # Fetching context is a read, even as a POST; it searches the spaces the caller can see.
    "context": LIST,
    "context post": LIST,
    "agents.md": READ,
    # Saying what was missing is allowed to anyone who can read the space.
    "gap report": (401, 404, 201, 201, 201, 201, 201, 404, 401, 401),
    # Drift marks records in the caller's own spaces suspect; read-only tokens may not.
    # Reporting drift marks records: callers with edit rights somewhere (only there).
    "drift": (401, 201, 403, 201, 201, 403, 201, 201, 401, 401),
    "drift github": WEBHOOK,
    # Assessing a change is a read, even as a POST; it considers the spaces the caller can see.
    "changes assess": LIST,
    # Rule files are a read of the spaces the caller can see.
    "rules": LIST,
    # A stored bundle (the editor searched payments) is read by whoever can see payments.
    "context bundle": READ,
    "drift gitlab": WEBHOOK,
    "import": write(202),
    "import progress": READ,
    "sync state": READ,
    # Only space admins link a space to a repository.
    "sync settings": (401, 404, 403, 403, 200, 403, 403, 404, 401, 401),
    "sync pull": write(200),
    "sync push": write(200),
    "sync run": write(200),
    # Proposals come from registered agents' tokens only (tests/agents covers those).
    "proposals list": AGENTS_ONLY,
    "proposal create": AGENTS_ONLY,
    "proposal read": AGENTS_ONLY,
    "schema": PUBLIC,
    "docs": PUBLIC,
}

CASES = [
    pytest.param(name, caller, EXPECTED[name][i], id=f"{name}-{caller}")
    for name in ENDPOINTS
    for i, caller in enumerate(CALLERS)
]


def _fill(value, ids):
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if value.startswith("{") and filled.isdigit() else filled
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _as(api, world, caller) -> dict:
    if caller in world["users"]:
        api.force_login(world["users"][caller], backend=MODEL_BACKEND)
        return {}
    if caller.endswith("_token"):
        return bearer(world["tokens"][caller.removesuffix("_token")])
    return {}


@pytest.fixture
def job(world):
    return interchange.import_job_create(
        space=world["space"], actor=world["users"]["editor"], data=adr_zip(), filename="adr.zip"
    )


@pytest.fixture
def repo_link(world):
    from apps.interchange.models import RepoLink

    return RepoLink.objects.create(
        space=world["space"],
        remote_url="http://127.0.0.1:9/kb.git",
        created_by=world["users"]["admin"],
    )


@pytest.fixture
def bundle(world, monkeypatch):
    """A context bundle the editor was served from the payments space, stored as the worker
    stores it."""
    from rest_framework.test import APIClient

    from apps.retrieval import tasks, usage

    monkeypatch.setattr(usage, "dispatch", tasks.log_context_request)
    client = APIClient()
    client.force_login(world["users"]["editor"], backend=MODEL_BACKEND)
    return client.get("/api/v1/context/", {"q": "PostgreSQL", "spaces": "payments"})[
        "X-Context-Bundle"
    ]


@pytest.mark.parametrize(("endpoint", "caller", "expected"), CASES)
def test_authorization_matrix(api, world, job, repo_link, bundle, endpoint, caller, expected):
    method, _, path, body = ENDPOINTS[endpoint]
    ids = {
        "dec1": world["dec1"].pk,
        "dec2": world["dec2"].pk,
        "archived": world["archived"].pk,
        "link": world["link"].pk,
        "job": job.uid,
        "bundle": bundle,
    }
    headers = _as(api, world, caller)
    if method in ("put", "patch") and endpoint.startswith("record"):
        headers["HTTP_IF_MATCH"] = f'"{world["dec1"].version}"'
    if callable(body):
        response = getattr(api, method)(_fill(path, ids), body(), format="multipart", **headers)
    else:
        response = getattr(api, method)(
            _fill(path, ids), _fill(body, ids), format="json", **headers
        )
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_matrix_covers_every_operation_in_the_schema(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", out)

    schema = yaml.safe_load(out.read_text())
    documented = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    covered = {(method, path) for method, path, _, _ in ENDPOINTS.values() if path}
    assert documented - covered == set(), "endpoints missing from the authorization matrix"
    assert covered - documented == set(), "matrix rows for endpoints the schema does not have"


# --- related records ------------------------------------------------------------------------
# DEC-1 of payments depends on a guardrail of another space, which was then edited (so DEC-1 is
# suspect because of it). The editor (and their tokens) is a member of both spaces and reads the
# guardrail's title and key; a viewer or admin of payments only reads "a record in a space you
# cannot see"; the others get no further than for any other read.

HIDDEN = "a record in a space you cannot see"
SECRET = "Quokkasecret key rotation"

RELATED_DOORS = {
    "record links": "/api/v1/records/{dec1}/links/",
    "revisions list": "/api/v1/records/{dec1}/revisions/",
    "revision read": "/api/v1/records/{dec1}/revisions/2/",
    "context": "/api/v1/context/?q=PostgreSQL",
    "agents.md": "/api/v1/context/agents.md?space=payments",
}

#               anon  outs  view      edit     admn      read     rw       othr  expd revk
RELATED_SEES = (401, 404, "hidden", "shown", "hidden", "shown", "shown", 404, 401, 401)


@pytest.fixture
def hidden_dependency(world, other_space):
    editor = world["users"]["editor"]
    guard = make_record(space=other_space, actor=editor, kind="guardrail", title=SECRET)
    record_services.record_link(source=world["dec1"], target=guard, type="depends_on", actor=editor)
    dec1 = Record.objects.get(pk=world["dec1"].pk)
    record_services.record_update(
        record=dec1,
        actor=editor,
        expected_version=dec1.version,
        changes={"status": "accepted", "impact": "high"},
    )
    guard = Record.objects.get(pk=guard.pk)
    record_services.record_update(
        record=guard, actor=editor, expected_version=guard.version, changes={"body": "Rotate."}
    )
    assert Record.objects.get(pk=dec1.pk).freshness == "suspect"
    return guard


@pytest.mark.parametrize(
    ("door", "caller", "sees"),
    [
        pytest.param(door, caller, RELATED_SEES[i], id=f"{door}-{caller}")
        for door in RELATED_DOORS
        for i, caller in enumerate(CALLERS)
    ],
)
def test_related_records_are_named_only_to_callers_who_can_see_them(
    api, world, hidden_dependency, door, caller, sees
):
    guard = hidden_dependency
    path = RELATED_DOORS[door].format(dec1=world["dec1"].pk)
    response = api.get(path, **_as(api, world, caller))
    text = response.content.decode()
    if sees == 404 and door == "context":
        # Context searches the caller's own spaces: it answers, without payments' records.
        assert response.status_code == 200
        assert "Use PostgreSQL" not in text
        return
    if isinstance(sees, int):
        assert response.status_code == sees
        return
    assert response.status_code == 200
    if sees == "shown":
        assert SECRET in text or guard.key in text
        assert HIDDEN not in text.lower()
    else:
        assert SECRET not in text and guard.key not in text and "/s/elsewhere/" not in text
        if door != "record links":  # the REST link lists leave such links out altogether
            assert HIDDEN in text.lower()

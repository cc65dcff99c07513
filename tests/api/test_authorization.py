"""Every endpoint against every kind of caller, with the status each must get."""

import pytest

from tests.api.conftest import MODEL_BACKEND, bearer

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

# (method, path template, body, If-Match needed)
ENDPOINTS = {
    "spaces list": ("get", "/api/v1/spaces/", None),
    "space read": ("get", "/api/v1/spaces/payments/", None),
    "space create": ("post", "/api/v1/spaces/", {"name": "New area"}),
    "space update": ("patch", "/api/v1/spaces/payments/", {"description": "Money"}),
    "records list": ("get", "/api/v1/records/", None),
    "record read": ("get", "/api/v1/records/{dec1}/", None),
    "record by key": ("get", "/api/v1/records/by-key/payments/DEC-1/", None),
    "record create": (
        "post",
        "/api/v1/records/",
        {"space": "payments", "kind": "constraint", "title": "No PII in logs"},
    ),
    "record replace": ("put", "/api/v1/records/{dec1}/", {"title": "Use PostgreSQL 18"}),
    "record patch": ("patch", "/api/v1/records/{dec1}/", {"summary": "One database"}),
    "record archive": ("post", "/api/v1/records/{dec1}/archive/", None),
    "record unarchive": ("post", "/api/v1/records/{archived}/unarchive/", None),
    "record links": ("get", "/api/v1/records/{dec1}/links/", None),
    "record link create": (
        "post",
        "/api/v1/records/{dec1}/links/",
        {"target": "{dec2}", "type": "depends_on"},
    ),
    "revisions list": ("get", "/api/v1/records/{dec1}/revisions/", None),
    "revision read": ("get", "/api/v1/records/{dec1}/revisions/1/", None),
    "revision diff": ("get", "/api/v1/records/{dec1}/revisions/1/diff/", None),
    "revision restore": ("post", "/api/v1/records/{dec1}/revisions/1/restore/", None),
    "record verify": ("post", "/api/v1/records/{dec1}/verify/", {"note": "Checked"}),
    "record supersede": ("post", "/api/v1/records/{dec1}/supersede/", {"successor": "{dec2}"}),
    "links list": ("get", "/api/v1/links/", None),
    "link read": ("get", "/api/v1/links/{link}/", None),
    "link create": (
        "post",
        "/api/v1/links/",
        {"source": "{dec1}", "target": "{dec2}", "type": "amends"},
    ),
    "link delete": ("delete", "/api/v1/links/{link}/", None),
    "me": ("get", "/api/v1/me/", None),
}

#        anon outs view edit admn read rw   othr expd revk
READ = (401, 404, 200, 200, 200, 200, 200, 404, 401, 401)
LIST = (401, 200, 200, 200, 200, 200, 200, 200, 401, 401)


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
    return value


def _as(api, world, caller) -> dict:
    if caller in world["users"]:
        api.force_login(world["users"][caller], backend=MODEL_BACKEND)
        return {}
    if caller.endswith("_token"):
        return bearer(world["tokens"][caller.removesuffix("_token")])
    return {}


@pytest.mark.parametrize(("endpoint", "caller", "expected"), CASES)
def test_authorization_matrix(api, world, endpoint, caller, expected):
    method, path, body = ENDPOINTS[endpoint]
    ids = {
        "dec1": world["dec1"].pk,
        "dec2": world["dec2"].pk,
        "archived": world["archived"].pk,
        "link": world["link"].pk,
    }
    headers = _as(api, world, caller)
    if method in ("put", "patch") and endpoint.startswith("record"):
        headers["HTTP_IF_MATCH"] = f'"{world["dec1"].version}"'
    response = getattr(api, method)(_fill(path, ids), _fill(body, ids), format="json", **headers)
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}

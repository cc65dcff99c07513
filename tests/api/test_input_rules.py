"""The API refuses what the web editor refuses: tag and anchor rules live in the record
services, so every door gives the same answer (see tests/interchange/test_input_rules.py)."""

import pytest

from apps.records.models import Record
from apps.web.forms import RecordForm
from tests.factories import make_record

pytestmark = pytest.mark.django_db

BAD_TAG = 'say "hi"'
BAD_ANCHOR = "C:\\Users\\me\\billing.py"


@pytest.fixture
def client(api, rw_token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {rw_token}")
    return api


def _form_errors(space, **data):
    form = RecordForm(
        {"title": "T", "status": "draft", "owner": "", **data}, space=space, kind="decision"
    )
    assert not form.is_valid()
    return form.errors


def test_a_tag_the_editor_refuses_is_refused_by_the_api_with_the_same_message(client, space, owner):
    form_message = _form_errors(space, tags=f"ok, {BAD_TAG}")["tags"][0]
    response = client.post(
        "/api/v1/records/",
        {"space": "payments", "kind": "decision", "title": "T", "tags": ["ok", BAD_TAG]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["tags"] == [form_message]
    assert not Record.objects.filter(space=space).exists()

    record = make_record(space=space, actor=owner, tags=["ok"])
    patch = client.patch(
        f"/api/v1/records/{record.pk}/",
        {"tags": [BAD_TAG]},
        format="json",
        HTTP_IF_MATCH=f'"{record.version}"',
    )
    assert patch.status_code == 400, patch.content
    assert patch.json()["error"]["details"]["tags"] == [form_message]
    record.refresh_from_db()
    assert (record.tags, record.version) == (["ok"], 1)


def test_an_anchor_the_editor_refuses_is_refused_by_the_api(client, space):
    assert "computer" in _form_errors(space, anchors=BAD_ANCHOR)["anchors"][0]
    response = client.post(
        "/api/v1/records/",
        {"space": "payments", "kind": "decision", "title": "T", "anchors": [BAD_ANCHOR]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "computer" in response.json()["error"]["details"]["anchors"][0]
    assert not Record.objects.filter(space=space).exists()

"""Superseding with a new successor through the API (the same service the web editor's
Supersede page uses: records.services.record_supersede_with_new)."""

import pytest

from apps.records import services
from apps.records.models import Link, Record
from tests.factories import make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(api, rw_token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {rw_token}")
    return api


@pytest.fixture
def old(space, owner):
    record = make_record(space=space, actor=owner, title="Use MySQL", status="accepted")
    rule = make_record(space=space, actor=owner, kind="constraint", title="Keep data in the EU")
    other = make_record(space=space, actor=owner, title="Nightly backups")
    services.record_link(source=record, target=rule, type="depends_on", actor=owner, note="GDPR")
    services.record_link(source=record, target=other, type="relates_to", actor=owner)
    return record


def _link_ids(record):
    return {link.target.key: link.pk for link in record.outgoing_links.select_related("target")}


def test_a_new_successor_is_created_linked_and_takes_the_links_asked_for(client, old):
    keep = _link_ids(old)["CON-1"]
    response = client.post(
        f"/api/v1/records/{old.pk}/supersede/",
        {
            "new": {"title": "Use Postgres", "status": "proposed", "tags": ["db"]},
            "copy_links": [keep],
            "note": "MySQL licence",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    link = response.json()
    assert (link["type"], link["target"]["key"], link["note"]) == (
        "supersedes",
        old.key,
        "MySQL licence",
    )
    new = Record.objects.get(pk=link["source"]["id"])
    assert (new.key, new.kind, new.title, new.tags) == ("DEC-3", "decision", "Use Postgres", ["db"])
    assert new.revisions.order_by("number").first().message == f"Supersedes {old.key}"
    old.refresh_from_db()
    assert old.status == "superseded"
    assert set(Link.objects.filter(source=new).values_list("type", "target__key", "note")) == {
        ("supersedes", old.key, "MySQL licence"),
        ("depends_on", "CON-1", "GDPR"),
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new": {"title": "Use Postgres", "tags": ['say "hi"']}}, "tags"),
        ({"new": {"title": "Use Postgres"}, "copy_links": [999999]}, "copy_links"),
        ({"new": {"title": ""}}, "title"),
        ({"new": {"title": "Use Postgres"}, "successor": 1}, "successor"),
        ({}, "successor"),
        ({"new": {"title": "Use Postgres", "colour": "red"}}, "colour"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(client, old, body, field):
    before = Record.objects.count()
    response = client.post(f"/api/v1/records/{old.pk}/supersede/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = error["details"]
    assert field in details or field in details.get("new", {}), error
    assert Record.objects.count() == before
    old.refresh_from_db()
    assert (old.status, old.version) == ("accepted", 1)

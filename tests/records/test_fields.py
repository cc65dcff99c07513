"""The one table of record fields (apps.records.fields) against the model and the formats it
must not change: stored revision snapshots, the API's PUT defaults, the history's labels."""

import datetime as dt

import pytest

from apps.records import fields, services
from apps.records.models import Record
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def test_every_field_is_a_model_field_with_the_same_limits():
    for spec in fields.FIELDS:
        model_field = Record._meta.get_field(spec.name)
        if spec.kind == fields.LIST:
            assert model_field.base_field.max_length == spec.max_length, spec.name
        elif spec.kind == fields.TEXT and spec.name != "body":
            assert model_field.max_length == spec.max_length, spec.name
        elif spec.kind == fields.CHOICE:
            assert model_field.choices, spec.name


def test_snapshot_keys_and_values_are_unchanged(space, owner):
    record = make_record(
        space=space,
        actor=owner,
        title="Use Postgres",
        tags=["db"],
        anchors=["db/**"],
        decided_on=dt.date(2026, 1, 31),
        owner_user=owner,
    )
    snap = services.snapshot(record)
    # The keys stored in every revision so far: old revisions must still render and restore.
    assert set(snap) == {
        "kind",
        "key",
        "title",
        "summary",
        "body",
        "status",
        "owner_user",
        "owner_team",
        "owner_label",
        "tags",
        "anchors",
        "reversibility",
        "impact",
        "decided_on",
        "deciders",
        "valid_until",
        "archived",
        "links",
    }
    assert snap["owner_user"] == owner.pk
    assert snap["decided_on"] == "2026-01-31"
    assert snap["valid_until"] is None
    assert snap["tags"] == ["db"]


def test_labels_and_defaults_read_as_before():
    assert fields.diff_labels()["owner_label"] == "Owner"
    assert fields.diff_labels()["valid_until"] == "Valid until"
    assert [name for name, _ in fields.form_fields()][-1] == "body"
    assert fields.put_defaults() == {
        "summary": "",
        "body": "",
        "owner_user": None,
        "owner_team": None,
        "tags": [],
        "anchors": [],
        "reversibility": "",
        "impact": "",
        "decided_on": None,
        "deciders": "",
        "valid_until": None,
    }
    assert {
        "title",
        "summary",
        "body",
        "status",
        "anchors",
        "valid_until",
        "reversibility",
        "impact",
    } == fields.MATERIAL_FIELDS

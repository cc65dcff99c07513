"""An import refuses what the web editor and the API refuse: the tag and anchor rules live in
the record services (see tests/api/test_input_rules.py)."""

import pytest

from apps.interchange import services, sources
from apps.records import services as record_services
from apps.records.models import Record

pytestmark = pytest.mark.django_db


def _exported(tags: str, anchors: str) -> str:
    return (
        "---\n"
        "key: DEC-7\n"
        "space: payments\n"
        "kind: decision\n"
        "title: Use Postgres\n"
        "status: accepted\n"
        f"tags:\n{tags}"
        f"anchors:\n{anchors}"
        "---\n"
        "# Use Postgres\n\nWe use Postgres.\n"
    )


def _import(space, owner, tmp_path, text):
    (tmp_path / "0007-use-postgres.md").write_text(text)
    return services.import_files(
        space=space, files=sources.read_folder(tmp_path), actor=owner, owner=owner
    )


def test_a_file_with_a_tag_the_editor_refuses_is_skipped_with_the_same_message(
    space, owner, tmp_path
):
    summary = _import(space, owner, tmp_path, _exported("- ok\n- 'say \"hi\"'\n", "- db/**\n"))
    [skipped] = summary.skipped
    assert skipped["path"] == "0007-use-postgres.md"
    assert record_services.tag_problem(['say "hi"']) in skipped["reason"]
    assert not Record.objects.filter(space=space).exists()


def test_a_file_with_an_anchor_the_editor_refuses_is_skipped(space, owner, tmp_path):
    summary = _import(
        space, owner, tmp_path, _exported("- ok\n", "- 'C:\\Users\\me\\billing.py'\n")
    )
    [skipped] = summary.skipped
    assert "is a path on one computer" in skipped["reason"]
    assert not Record.objects.filter(space=space).exists()


def test_the_same_file_with_good_tags_and_anchors_is_imported(space, owner, tmp_path):
    summary = _import(space, owner, tmp_path, _exported("- ok\n", "- db/**\n"))
    assert not summary.skipped
    record = Record.objects.get(space=space)
    assert (record.tags, record.anchors) == (["ok"], ["db/**"])

"""Importing ADR folders: formats, statuses, links, idempotency, dry runs and the command."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from apps.core.errors import Forbidden
from apps.interchange import merge, services, sources
from apps.records.models import Link, Record


def _import(space, folder, actor, **kwargs):
    return services.import_files(
        space=space, files=sources.read_folder(folder), actor=actor, **kwargs
    )


def _by_path(space):
    return {r.source_path: r for r in Record.objects.filter(space=space)}


def _links(space):
    return set(
        Link.objects.filter(source__space=space).values_list("source__key", "type", "target__key")
    )


@pytest.mark.django_db
def test_real_adrs_become_records_with_their_numbers_dates_deciders_and_bodies(
    space, owner, adr_folder
):
    summary = _import(space, adr_folder, owner, owner=owner)

    assert len(summary.created) == 6
    assert summary.skipped == [{"path": "README.md", "reason": "index page, not a decision"}]
    records = _by_path(space)
    aws10 = records["govuk-aws/0010-terraform-directory-structure.md"]
    assert (aws10.key, aws10.title, aws10.status) == (
        "DEC-10",
        "10. Terraform directory structure",
        "accepted",
    )
    assert aws10.decided_on == dt.date(2017, 7, 4)
    assert aws10.owner_user == owner
    original = (adr_folder / "govuk-aws/0010-terraform-directory-structure.md").read_text()
    # The body is the file as written, less the H1 the title was taken from.
    assert aws10.body == original.split("\n", 2)[2]
    assert aws10.body.startswith("Date: 2017-07-04")
    jabref57 = records["jabref/0057-allow-positional-input-file-argument.md"]
    assert jabref57.key == "DEC-57"
    assert jabref57.title == "Allow a Positional Input File Argument for `jabkit` Commands"
    # The front matter is metadata; the body is the markdown after it, unchanged.
    assert not jabref57.body.startswith("# ")
    # log4brains' YYYYMMDD- names are dates, not numbers: those records get free numbers.
    l4b = records["log4brains/20200926-use-the-adr-number-as-its-unique-id.md"]
    assert l4b.number not in (10, 17, 45, 57, 20200926)
    assert l4b.decided_on == dt.date(2020, 9, 26)


@pytest.mark.django_db
def test_supersede_and_amend_wording_becomes_typed_links_in_the_right_direction(
    space, owner, adr_folder
):
    summary = _import(space, adr_folder, owner)
    records = _by_path(space)
    key = {path.split("/")[-1][:13]: r.key for path, r in records.items()}
    old_l4b, new_l4b = key["20200926-use-"], key["20201016-use-"]

    assert _links(space) == {
        # "- Status: superseded by [20201016…]" and "- Supersedes [20200926…]": one link.
        (new_l4b, "supersedes", old_l4b),
        # "Amended by [17…]" in 0010 and "Amends [10…]" in 0017: 0017 amends 0010.
        ("DEC-17", "amends", "DEC-10"),
        # Front matter `status: "superseded by ADR-0057"` (plain text, no link).
        ("DEC-57", "supersedes", "DEC-45"),
    }
    assert summary.links_unresolved == []
    statuses = {r.key: r.status for r in records.values()}
    assert statuses[old_l4b] == statuses["DEC-45"] == "superseded"
    assert statuses[new_l4b] == statuses["DEC-57"] == statuses["DEC-10"] == "accepted"


@pytest.mark.django_db
def test_reimporting_the_same_folder_updates_records_instead_of_duplicating_them(
    space, owner, adr_folder
):
    _import(space, adr_folder, owner)
    first = {r.source_path: (r.pk, r.key, r.version) for r in Record.objects.filter(space=space)}
    links_before = _links(space)

    again = _import(space, adr_folder, owner)
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 6)
    assert again.links_created == [] and again.links_existing == 3
    assert {
        r.source_path: (r.pk, r.key, r.version) for r in Record.objects.filter(space=space)
    } == first

    # Edit one file upstream: the same record is updated, keeps its key, and the superseded
    # status its successor's link gave the other record is not undone by a re-import.
    path = adr_folder / "govuk-aws/0017-terraform-data-structure.md"
    path.write_text(path.read_text().replace("\nAccepted\n", "\nDeprecated\n"))
    third = _import(space, adr_folder, owner)
    assert [u["key"] for u in third.updated] == ["DEC-17"]
    assert Record.objects.get(space=space, key="DEC-17").status == "deprecated"
    assert Record.objects.get(space=space, key="DEC-45").status == "superseded"
    assert Record.objects.filter(space=space).count() == 6
    assert _links(space) == links_before


@pytest.mark.django_db
def test_numbers_already_taken_in_the_space_are_not_reused(space, owner, adr_folder):
    from tests.factories import make_record

    existing = make_record(space=space, actor=owner, title="Already DEC-10", number=10)
    _import(space, adr_folder, owner)
    record = _by_path(space)["govuk-aws/0010-terraform-directory-structure.md"]
    assert record.pk != existing.pk and record.key != "DEC-10"
    assert Record.objects.get(pk=existing.pk).title == "Already DEC-10"


@pytest.mark.django_db
def test_dry_run_reports_everything_and_saves_nothing(space, owner, adr_folder):
    summary = _import(space, adr_folder, owner, dry_run=True)
    assert summary.dry_run and len(summary.created) == 6 and len(summary.links_created) == 3
    assert Record.objects.filter(space=space).count() == 0
    assert Link.objects.count() == 0


@pytest.mark.django_db
def test_viewers_and_outsiders_cannot_import(space, viewer, outsider, adr_folder):
    with pytest.raises(Forbidden):
        _import(space, adr_folder, viewer)
    with pytest.raises(Exception) as info:
        _import(space, adr_folder, outsider)
    assert info.value.__class__.__name__ == "NotFound"
    assert Record.objects.count() == 0


@pytest.mark.django_db
def test_command_prints_a_summary_with_unresolved_links_and_their_lines(space, owner, tmp_path):
    folder = tmp_path / "decisions"
    folder.mkdir()
    (folder / "0001-use-postgres.md").write_text(
        "# 1. Use PostgreSQL\n\nDate: 2024-01-31\n\n## Status\n\nSuperseded by [2](0002-use-sqlite.md)\n"
    )
    (folder / "0003-cache.md").write_text(
        "# 3. Cache\n\nDate: 2024-14-02\n\n## Status\n\nPending review by the board 🛑\n\n"
        "See [the old one](0001-use-postgres.md) and [a lost one](0009-gone.md).\n"
    )
    (folder / "0004-odd.md").write_text("# 4. Odd\n\n## Status\n\nFrobnicated\n")
    (folder / "0005-madr.md").write_text(
        "---\nstatus: ✅ ACCEPTED\ndate: 2023-05-06\ndecision-makers: [Ann, Bob]\n---\n"
        "# Use MADR\n\n## Decision Outcome\n\nChosen.\n"
    )
    (folder / "0006-madr2.md").write_text(
        "# Use tabs\n\n* Status: rejected\n* Deciders: Cy, Di\n* Date: 11/12/2020\n\n"
        "## Context and Problem Statement\n\nWhy.\n"
    )
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_markdown", str(folder), space=space.slug, owner=owner.email, stdout=out, stderr=err
    )
    text = out.getvalue()
    assert "records: 100%" in err.getvalue()  # the progress bar
    assert "5 files: 5 created, 0 updated, 0 unchanged, 0 skipped." in text
    assert "0001-use-postgres.md:7: superseded by 0002-use-sqlite.md" in text
    assert "0003-cache.md:9: relates 0009-gone.md" in text
    assert "0003-cache.md: invalid date '2024-14-02'; imported without a date" in text
    assert "0004-odd.md: 'Frobnicated'" in text
    records = {r.number: r for r in Record.objects.filter(space=space)}
    # No successor found: it cannot be "superseded" without one, so it is deprecated and said so.
    assert records[1].status == "deprecated"
    assert records[3].status == "proposed" and records[3].decided_on is None
    # An unknown status word is import metadata, not a tag.
    assert records[4].status == "draft" and records[4].tags == []
    assert (records[5].status, records[5].deciders, records[5].decided_on) == (
        "accepted",
        "Ann, Bob",
        dt.date(2023, 5, 6),
    )
    assert (records[6].status, records[6].deciders, records[6].decided_on) == (
        "rejected",
        "Cy, Di",
        dt.date(2020, 12, 11),
    )
    assert _links(space) == {("DEC-3", "relates_to", "DEC-1")}


@pytest.mark.django_db
def test_command_refuses_unknown_space_and_owner(space, owner, adr_folder):
    with pytest.raises(CommandError, match="No space"):
        call_command("import_markdown", str(adr_folder), space="nope", owner=owner.email)
    with pytest.raises(CommandError, match="No user"):
        call_command("import_markdown", str(adr_folder), space=space.slug, owner="x@example.org")


@pytest.mark.django_db
def test_a_number_two_files_share_is_linked_only_when_one_of_them_links_back(
    space, owner, tmp_path
):
    folder = tmp_path / "adr"
    folder.mkdir()
    (folder / "0001-audit-trail.md").write_text(
        "# 1. Audit trail\n\n## Status\n\nSuperseded by ADR-2\n"
    )
    (folder / "0002-state-machine.md").write_text("# 2. State machine\n\n## Status\n\nAccepted\n")
    (folder / "0002-remove-audit-trail.md").write_text(
        "# 2. Remove the audit trail\n\n## Status\n\nAccepted\n"
    )
    summary = _import(space, folder, owner)
    assert summary.links_unresolved == [
        {
            "path": "0001-audit-trail.md",
            "line": 5,
            "relation": "superseded by",
            "target": "ADR-2",
            "note": "ambiguous: 0002-remove-audit-trail.md, 0002-state-machine.md",
        }
    ]
    assert _links(space) == set()
    assert _by_path(space)["0001-audit-trail.md"].status == "deprecated"

    # The successor says which one it is by linking back: now the link is made, and reported.
    (folder / "0002-remove-audit-trail.md").write_text(
        "# 2. Remove the audit trail\n\n## Status\n\nAccepted\n\n"
        "We added [an audit trail](0001-audit-trail.md) and never used it.\n"
    )
    again = _import(space, folder, owner)
    records = _by_path(space)
    successor = records["0002-remove-audit-trail.md"]
    assert _links(space) == {(successor.key, "supersedes", "DEC-1")}
    assert records["0001-audit-trail.md"].status == "superseded"
    assert again.links_unresolved == []
    assert {
        "path": "0001-audit-trail.md",
        "message": "line 5: 'ADR-2' matches 2 files; linked to 0002-remove-audit-trail.md, "
        "the one that links back here",
    } in again.problems


@pytest.mark.django_db
def test_a_github_url_to_this_files_own_path_in_another_repository_is_reported(
    space, owner, tmp_path
):
    folder = tmp_path / "adr"
    folder.mkdir()
    (folder / "0038-egress.md").write_text(
        "# 38. Egress\n\nSee https://github.com/acme/private/blob/main/0038-egress.md\n"
    )
    # A link to its own file in the folder's own repository (known from the links that lead
    # to other files in it) is only a self-link: nothing to report.
    (folder / "0068-sync.md").write_text(
        "# 68. Sync\n\nBuilds on <https://github.com/acme/kb/blob/main/0038-egress.md>.\n"
        "This is https://github.com/acme/kb/blob/main/0068-sync.md\n"
    )
    summary = _import(space, folder, owner)
    assert summary.links_unresolved == [
        {
            "path": "0038-egress.md",
            "line": 3,
            "relation": "relates",
            "target": "https://github.com/acme/private/blob/main/0038-egress.md",
            "note": "this file's own path, in github.com/acme/private",
        }
    ]
    assert _links(space) == {("DEC-68", "relates_to", "DEC-38")}


@pytest.mark.django_db
def test_a_renamed_file_with_a_front_matter_id_updates_the_same_record(space, owner, tmp_path):
    folder = tmp_path / "adr"
    folder.mkdir()
    madr = "---\nid: adr-cache\nstatus: proposed\n---\n# 12. Cache sessions in Redis\n\nWhy.\n"
    (folder / "0012-cache.md").write_text(madr)
    (folder / "0013-queue.md").write_text("---\nid: adr-queue\n---\n# 13. Queue\n")
    _import(space, folder, owner)
    record = _by_path(space)["0012-cache.md"]

    (folder / "0012-cache.md").rename(folder / "0012-cache-sessions-in-redis.md")
    (folder / "0012-cache-sessions-in-redis.md").write_text(madr.replace("proposed", "accepted"))
    summary = _import(space, folder, owner)

    assert summary.created == []
    assert summary.updated == [{"path": "0012-cache-sessions-in-redis.md", "key": record.key}]
    assert {
        "path": "0012-cache-sessions-in-redis.md",
        "message": "DEC-12 found by its front-matter id 'adr-cache': renamed from 0012-cache.md",
    } in summary.problems
    moved = Record.objects.get(pk=record.pk)
    assert (moved.key, moved.status, moved.source_path) == (
        "DEC-12",
        "accepted",
        "0012-cache-sessions-in-redis.md",
    )
    assert Record.objects.filter(space=space).count() == 2
    # The new path is remembered: a third import changes nothing.
    third = _import(space, folder, owner)
    assert third.created == [] and third.updated == [] and len(third.unchanged) == 2


@pytest.mark.django_db
def test_an_id_two_files_share_matches_neither_by_id(space, owner, tmp_path):
    folder = tmp_path / "adr"
    folder.mkdir()
    (folder / "0001-a.md").write_text("---\nid: same\n---\n# 1. A\n")
    (folder / "0002-b.md").write_text("---\nid: same\n---\n# 2. B\n")
    summary = _import(space, folder, owner)
    assert len(summary.created) == 2
    assert sorted(p["path"] for p in summary.problems) == ["0001-a.md", "0002-b.md"]
    assert "is used by 2 files; matched by its path only" in summary.problems[0]["message"]


@pytest.mark.django_db
def test_two_numbering_series_in_one_folder_keep_their_numbers_where_free(space, owner, tmp_path):
    """alphagov/forms keeps ADR/ADR001… and decision-record/DR001… side by side: a clash on one
    number gives the later file (by path) a fresh number after all the others, and never moves
    the numbers of the files after it."""
    folder = tmp_path / "forms"
    for sub, prefix, count in (("ADR", "ADR", 6), ("decision-record", "DR", 3)):
        (folder / sub).mkdir(parents=True)
        for n in range(1, count + 1):
            (folder / sub / f"{prefix}{n:03d}-x.md").write_text(f"# {prefix}{n:03d}\n")
    (folder / "ADR" / "ADR000-process.md").write_text("# How we record decisions\n")

    _import(space, folder, owner)

    numbers = {path: r.number for path, r in _by_path(space).items()}
    assert {p: n for p, n in numbers.items() if p.startswith("ADR/ADR0") and n <= 6} == {
        f"ADR/ADR{n:03d}-x.md": n for n in range(1, 7)
    }
    # DR001-DR003 clash with ADR001-ADR003; they and the unnumbered file come after ADR006.
    assert sorted(
        numbers[p]
        for p in numbers
        if p.startswith("decision-record/") or p == "ADR/ADR000-process.md"
    ) == [7, 8, 9, 10]


def _edit(record, actor, **changes):
    from apps.records import services as record_services

    return record_services.record_update(
        record=Record.objects.get(pk=record.pk),
        actor=actor,
        expected_version=None,
        changes=changes,
    )


@pytest.mark.django_db
def test_reimporting_never_undoes_edits_made_in_the_app(space, owner, teammate, adr_folder):
    _import(space, adr_folder, owner)
    dec10 = Record.objects.get(space=space, key="DEC-10")
    original = dec10.body
    _edit(dec10, teammate, body=original + "\nClarified in the app.\n", status="deprecated")

    # The folder has not changed: the edits stay.
    again = _import(space, adr_folder, owner)
    dec10 = Record.objects.get(pk=dec10.pk)
    assert dec10.body.endswith("Clarified in the app.\n") and dec10.status == "deprecated"
    assert again.updated == [] and again.skipped[1:] == []

    # The file changes a field the app did not touch (deciders, in MADR front matter): that
    # field is taken, the edits stay.
    path = adr_folder / "jabref/0057-allow-positional-input-file-argument.md"
    text = path.read_text()
    path.write_text(text.replace("---\n", "---\ndeciders: Ann, Bob\n", 1))
    dec57 = Record.objects.get(space=space, key="DEC-57")
    _edit(dec57, teammate, summary="Summed up in the app")
    third = _import(space, adr_folder, owner)
    dec57 = Record.objects.get(pk=dec57.pk)
    assert [u["key"] for u in third.updated] == ["DEC-57"]
    assert (dec57.deciders, dec57.summary) == ("Ann, Bob", "Summed up in the app")

    # The file changes the body the app changed too: nothing of that file is written.
    path = adr_folder / "govuk-aws/0010-terraform-directory-structure.md"
    path.write_text(path.read_text().replace("Date: 2017-07-04", "Date: 2017-07-05"))
    version = dec10.version
    fourth = _import(space, adr_folder, owner)
    reasons = {s["path"]: s["reason"] for s in fourth.skipped}
    assert reasons["govuk-aws/0010-terraform-directory-structure.md"].startswith(
        "changed in contextkb since the last import, and in the file too (body): not overwritten"
    )
    dec10 = Record.objects.get(pk=dec10.pk)
    assert dec10.version == version and dec10.decided_on == dt.date(2017, 7, 4)
    assert dec10.body.endswith("Clarified in the app.\n")
    # Links from and to it still hold.
    assert ("DEC-17", "amends", "DEC-10") in _links(space)

    # Asked to, the files win.
    fifth = _import(space, adr_folder, owner, overwrite_edits=True)
    dec10 = Record.objects.get(pk=dec10.pk)
    assert [u["key"] for u in fifth.updated] == ["DEC-10"]
    assert dec10.body == path.read_text().split("\n", 2)[2] and dec10.status == "accepted"


@pytest.mark.django_db(transaction=True)
def test_an_edit_saved_while_the_import_runs_is_not_overwritten(
    space, owner, teammate, adr_folder, monkeypatch
):
    import threading

    from django.db import connection

    _import(space, adr_folder, owner)
    path = adr_folder / "govuk-aws/0017-terraform-data-structure.md"
    path.write_text(path.read_text() + "\nA late addition.\n")
    real_merge = merge.merge_changes

    def save_in_the_browser(record):
        _edit(record, teammate, summary="Saved by a teammate meanwhile")
        connection.close()

    def merge_while_someone_saves(doc, existing, changes):
        if existing.key == "DEC-17":
            # A teammate saves DEC-17 (and commits, on their own connection) after the import
            # read it and before it writes.
            thread = threading.Thread(target=save_in_the_browser, args=(existing,))
            thread.start()
            thread.join()
        return real_merge(doc, existing, changes)

    monkeypatch.setattr(merge, "merge_changes", merge_while_someone_saves)
    summary = _import(space, adr_folder, owner)

    dec17 = Record.objects.get(space=space, key="DEC-17")
    assert dec17.summary == "Saved by a teammate meanwhile"
    assert not dec17.body.endswith("A late addition.\n")
    assert "govuk-aws/0017-terraform-data-structure.md" in {s["path"] for s in summary.skipped}


@pytest.mark.django_db
def test_command_lists_what_a_reimport_updated(space, owner, adr_folder):
    def run(*args):
        out = io.StringIO()
        call_command(
            "import_markdown",
            str(adr_folder),
            *args,
            space=space.slug,
            as_user=owner.email,
            stdout=out,
            stderr=io.StringIO(),
        )
        return out.getvalue()

    first = run("-v", "2")
    assert "Created:\n  DEC-10: govuk-aws/0010-terraform-directory-structure.md\n" in first
    path = adr_folder / "govuk-aws/0017-terraform-data-structure.md"
    path.write_text(path.read_text() + "\nOne more thing.\n")
    second = run()
    assert "7 files: 0 created, 1 updated, 5 unchanged, 1 skipped." in second
    assert "Updated:\n  DEC-17: govuk-aws/0017-terraform-data-structure.md\n" in second
    assert "Created:" not in second

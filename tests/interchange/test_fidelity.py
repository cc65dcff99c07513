"""Import fidelity: status tables, supersede forms with emoji and dates, titles from file names,
no duplicated H1, import facts kept out of tags, MADR 4 names, and real ages for old ADRs.

The fixtures are written here, in the shapes authors use (not copied from the shared corpus)."""

import datetime as dt
import subprocess

import pytest
import time_machine
import yaml

from apps.interchange import adr_links, services, sources
from apps.interchange.models import ImportBaseline
from apps.records.models import Link, Record
from apps.reminders import selectors as reminders

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

HYADES_PROPOSED = """\
| Status   | Date       | Author(s)                            |
|:---------|:-----------|:-------------------------------------|
| Proposed | 2025-01-07 | [@ana](https://github.com/ana)       |

## Context

We poll the vulnerability feeds every hour.

## Decision

Poll them every ten minutes.
"""

HYADES_ACCEPTED = """\
| Status   | Date       | Author(s)                       |
|----------|------------|---------------------------------|
| Accepted | 2024-03-01 | [@bo](https://github.com/bo), Cy |

## Context

Workers need a queue.
"""

VERTICAL_TABLE = """\
# Keep audit logs for a year

| Field  | Value      |
|--------|------------|
| Status | Rejected   |
| Date   | 2023-02-03 |

## Context

Storage is cheap.
"""


def _write(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _import(space, folder, actor, **kwargs):
    return services.import_files(
        space=space, files=sources.read_folder(folder), actor=actor, **kwargs
    )


def _by_name(space):
    return {r.source_path: r for r in Record.objects.filter(space=space)}


@pytest.mark.django_db
def test_status_tables_give_the_authors_status_date_and_title_from_the_file_name(
    space, owner, tmp_path
):
    folder = _write(
        tmp_path / "adr",
        {
            "001-poll-feeds-more-often.md": HYADES_PROPOSED,
            "002-use-postgres-for-queues.md": HYADES_ACCEPTED,
            "003-audit-log-retention.md": VERTICAL_TABLE,
        },
    )
    summary = _import(space, folder, owner, owner=owner)

    assert len(summary.created) == 3 and summary.problems == []
    records = _by_name(space)
    proposed = records["001-poll-feeds-more-often.md"]
    # The proposal is a proposal, not a decision agents should follow.
    assert (proposed.status, proposed.title, proposed.decided_on, proposed.deciders) == (
        "proposed",
        "Poll feeds more often",
        dt.date(2025, 1, 7),
        "@ana",
    )
    accepted = records["002-use-postgres-for-queues.md"]
    assert (accepted.status, accepted.title, accepted.decided_on, accepted.deciders) == (
        "accepted",
        "Use postgres for queues",
        dt.date(2024, 3, 1),
        "@bo, Cy",
    )
    rejected = records["003-audit-log-retention.md"]
    assert (rejected.status, rejected.title, rejected.decided_on) == (
        "rejected",
        "Keep audit logs for a year",
        dt.date(2023, 2, 3),
    )
    facts = ImportBaseline.objects.get(record=proposed).facts
    assert facts["status_from"] == "status table" and facts["title_from"] == "file name"
    assert facts["status_as_written"] == "Proposed"


@pytest.mark.django_db
def test_emoji_and_dated_superseded_lines_become_supersedes_links(space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0007-use-cron.md": (
                "# 7. Use cron\n\n## Status\n\n⌛️ Superseded [0019](0019-use-a-scheduler.md)\n\n"
                "## Context\n\nNightly jobs.\n"
            ),
            "0008-store-files-on-nfs.md": (
                "# 8. Store files on NFS\n\nDate: 2017-05-02\n\n## Status\n\n"
                "Superseded: 2019-12-19 by [ADR 14](0014-store-files-in-s3.md)\n"
            ),
            "0009-log-to-files.md": (
                "# 9. Log to files\n\n## Status\n\nSuperseded on 2020-02-01 by ADR 14\n"
            ),
            "0014-store-files-in-s3.md": "# 14. Store files in S3\n\n## Status\n\nAccepted\n",
            "0019-use-a-scheduler.md": "# 19. Use a scheduler\n\n## Status\n\n✅ Accepted\n",
        },
    )
    summary = _import(space, folder, owner, owner=owner)

    assert summary.links_unresolved == []
    links = set(
        Link.objects.filter(source__space=space).values_list("source__key", "type", "target__key")
    )
    assert links == {
        ("DEC-19", "supersedes", "DEC-7"),
        ("DEC-14", "supersedes", "DEC-8"),
        ("DEC-14", "supersedes", "DEC-9"),
    }
    statuses = {r.number: r.status for r in Record.objects.filter(space=space)}
    assert statuses == {7: "superseded", 8: "superseded", 9: "superseded", 14: "accepted", 19: "accepted"}  # fmt: skip
    facts = ImportBaseline.objects.get(record__number=8).facts
    # The Date line (2017) is older than the day it was superseded: the latest date counts.
    assert facts["dated"].startswith("2019-12-19") and facts["dated_from"] == "status section"


def test_supersede_forms_in_the_docs_are_read_as_written():
    forms = {
        "⌛️ Superseded [0019](0019-x.md)": adr_links.SUPERSEDED_BY,
        "Superseded: 2019-12-19 by [ADR 14](0014-x.md)": adr_links.SUPERSEDED_BY,
        "Superseded on 2019-12-19 by [ADR 14](0014-x.md)": adr_links.SUPERSEDED_BY,
        "Superseded by [ADR 14](0014-x.md)": adr_links.SUPERSEDED_BY,
        "Replaced by [ADR 14](0014-x.md)": adr_links.SUPERSEDED_BY,
        "Supersedes [ADR 14](0014-x.md)": adr_links.SUPERSEDES,
        "Amended by [ADR 14](0014-x.md)": adr_links.AMENDED_BY,
        "Amended: 2021-01-02 by [ADR 14](0014-x.md)": adr_links.AMENDED_BY,
        "Amends [ADR 14](0014-x.md)": adr_links.AMENDS,
        "See also [ADR 14](0014-x.md)": adr_links.RELATES,
    }
    for line, relation in forms.items():
        assert [link.relation for link in adr_links.find_links(line)] == [relation], line
    text = adr_links.find_links("Superseded: 2019-12-19 by ADR 14")
    assert [(t.relation, t.number) for t in text] == [(adr_links.SUPERSEDED_BY, 14)]


@pytest.mark.django_db
def test_the_title_h1_is_not_repeated_in_the_body_and_export_puts_it_back(space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-use-postgres.md": "# 1. Use Postgres\n\nDate: 2020-01-02\n\n## Status\n\n"
            "Accepted\n",
            "0002-madr.md": "---\nstatus: accepted\n---\n# Use MADR\n\n## Context\n\nWhy.\n",
        },
    )
    _import(space, folder, owner)
    records = _by_name(space)
    assert records["0001-use-postgres.md"].body == "Date: 2020-01-02\n\n## Status\n\nAccepted\n"
    assert records["0002-madr.md"].body == "## Context\n\nWhy.\n"

    exported = {f.path: f.content for f in services.export_space(space=space, actor=owner)}
    assert exported["0002-madr.md"].split("---\n", 2)[2] == "# Use MADR\n\n## Context\n\nWhy.\n"


@pytest.mark.django_db
def test_unstated_and_on_hold_statuses_are_import_metadata_not_tags(client, space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-no-status.md": "# 1. No status\n\n## Context\n\nJust text.\n",
            "0002-on-hold.md": "# 2. Parked\n\n## Status\n\nOn hold\n",
        },
    )
    _import(space, folder, owner)
    records = _by_name(space)
    assert [r.tags for r in records.values()] == [[], []]
    facts = {p: ImportBaseline.objects.get(record=r).facts for p, r in records.items()}
    assert facts["0001-no-status.md"]["status_note"] == "unstated"
    assert facts["0002-on-hold.md"]["status_note"] == "on hold"
    assert facts["0002-on-hold.md"]["status_as_written"] == "On hold"
    # Nothing status-… reaches the tag suggestions editors see.
    assert not Record.objects.filter(space=space, tags__overlap=["status-unstated"]).exists()


@pytest.mark.django_db
def test_a_reimport_drops_status_tags_earlier_imports_wrote(space, owner, tmp_path):
    folder = _write(tmp_path / "adr", {"0001-no-status.md": "# 1. No status\n\nText.\n"})
    _import(space, folder, owner)
    record = Record.objects.get(space=space)
    Record.objects.filter(pk=record.pk).update(tags=["status-unstated", "billing"])
    _import(space, folder, owner)
    assert Record.objects.get(pk=record.pk).tags == ["billing"]


@pytest.mark.django_db
def test_summary_keys_link_to_the_records(client, space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-a.md": "# 1. A\n\n## Status\n\nSuperseded by [2](0002-b.md)\n",
            "0002-b.md": "# 2. B\n\n## Status\n\nAccepted\n",
        },
    )
    summary = _import(space, folder, owner).as_dict()
    assert summary["created"][0]["url"] == f"/s/{space.slug}/DEC-1/"
    assert summary["links_created"][0]["source_url"] == f"/s/{space.slug}/DEC-2/"
    again = _import(space, folder, owner).as_dict()
    assert again["unchanged"][0]["url"] == f"/s/{space.slug}/DEC-1/"
    dry = _import(space, folder, owner, dry_run=True).as_dict()
    assert dry["unchanged"][0]["url"] == ""


@pytest.mark.django_db
def test_madr4_front_matter_round_trips_decision_makers_consulted_and_informed(
    space, owner, tmp_path
):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-use-madr4.md": (
                "---\nstatus: accepted\ndate: 2024-05-06\ndecision-makers: [Ann, Bob]\n"
                "consulted: [Security team]\ninformed: Everyone\n---\n# Use MADR 4\n\nText.\n"
            )
        },
    )
    _import(space, folder, owner)
    record = Record.objects.get(space=space)
    assert record.deciders == "Ann, Bob"
    exported = {f.path: f.content for f in services.export_space(space=space, actor=owner)}
    meta = yaml.safe_load(exported["0001-use-madr4.md"].split("---\n", 2)[1])
    assert meta["decision-makers"] == "Ann, Bob" and "deciders" not in meta
    assert (meta["consulted"], meta["informed"]) == ("Security team", "Everyone")


# --- real ages ---------------------------------------------------------------------------------


@pytest.mark.django_db
@time_machine.travel(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), tick=False)
def test_an_old_adr_is_due_at_once_and_in_its_owners_digest(space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-old.md": "# 1. Old\n\nDate: 2018-03-04\n\n## Status\n\nAccepted\n",
            "0002-new.md": "# 2. New\n\nDate: 2026-11-24\n\n## Status\n\nAccepted\n",
            "003-table.md": HYADES_ACCEPTED,
        },
    )
    _import(space, folder, owner, owner=owner)
    records = {r.number: r for r in Record.objects.filter(space=space)}
    assert records[1].freshness == "stale" and records[1].last_verified_at is None
    assert records[1].next_review_at < dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    assert records[3].freshness == "stale"  # the status table's date, 2024-03-01
    assert records[2].freshness == "unverified"  # a week old, nobody verified it here yet
    digest = reminders.digest_items(user=owner)
    assert sorted(i.record.number for g in digest for i in g.items) == [1, 3]


@pytest.mark.django_db
@time_machine.travel(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), tick=False)
def test_old_adrs_nobody_owns_go_to_the_space_admins_review_queue(
    space, owner, admin_user, tmp_path
):
    folder = _write(tmp_path / "adr", {"0001-old.md": "# 1. Old\n\nDate: 2019-01-02\n"})
    _import(space, folder, owner)
    record = Record.objects.get(space=space)
    assert record.owner_user is None and record.freshness == "stale"
    queue = reminders.review_queue(user=admin_user)
    assert [i.record.key for g in queue["orphans"] for i in g.items] == ["DEC-1"]
    escalated = reminders.escalation_items(user=admin_user)
    assert [i.record.key for g in escalated for i in g.items] == ["DEC-1"]


def _git(folder, *args, date=None):
    env = {"GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "ann@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Ann", "GIT_COMMITTER_EMAIL": "ann@example.com"}
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(folder)}
    if date:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)


@pytest.mark.django_db
@time_machine.travel(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), tick=False)
def test_an_undated_adr_in_a_git_checkout_is_dated_by_its_last_commit(space, owner, tmp_path):
    repo = tmp_path / "repo"
    folder = _write(repo / "docs" / "adr", {"0001-undated.md": "# 1. Undated\n\nText.\n"})
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "ADR 1", date="2020-06-07T10:00:00+00:00")
    _write(folder, {"0002-fresh.md": "# 2. Fresh\n\nText.\n"})
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "ADR 2", date="2026-11-30T10:00:00+00:00")

    _import(space, folder, owner, owner=owner)
    records = {r.number: r for r in Record.objects.filter(space=space)}
    assert records[1].freshness == "stale" and records[2].freshness == "unverified"
    assert records[1].created_at == dt.datetime(2020, 6, 7, 10, tzinfo=dt.UTC)
    facts = ImportBaseline.objects.get(record=records[1]).facts
    assert facts["dated_from"] == "last commit"


@pytest.mark.django_db
def test_the_job_page_links_keys_in_the_summary(client, space, owner, tmp_path):
    from apps.interchange.models import ImportJob

    summary = _import(space, _write(tmp_path / "adr", {"0001-a.md": "# 1. A\n\nAccepted\n"}), owner)
    job = ImportJob.objects.create(
        space=space, created_by=owner, state="done", summary=summary.as_dict()
    )
    client.force_login(owner, backend=MODEL_BACKEND)
    page = client.get(f"/imports/{job.uid}/").content.decode()
    assert f'<a href="/s/{space.slug}/DEC-1/">DEC-1</a>' in page


@pytest.mark.django_db
@time_machine.travel(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), tick=False)
def test_a_reimport_dates_records_an_older_import_left_fresh(space, owner, tmp_path):
    folder = _write(tmp_path / "adr", {"0001-old.md": "# 1. Old\n\nDate: 2018-03-04\n"})
    _import(space, folder, owner, owner=owner)
    record = Record.objects.get(space=space)
    # As an import before this fix left it: dated from the import, fresh.
    Record.objects.filter(pk=record.pk).update(
        created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        next_review_at=dt.datetime(2027, 3, 1, tzinfo=dt.UTC),
        freshness="fresh",
    )
    _import(space, folder, owner, owner=owner)
    assert Record.objects.get(pk=record.pk).freshness == "stale"
    # A record verified here keeps the clock its verification started.
    Record.objects.filter(pk=record.pk).update(
        last_verified_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        next_review_at=dt.datetime(2027, 3, 30, tzinfo=dt.UTC),
        freshness="fresh",
    )
    _import(space, folder, owner, owner=owner)
    assert Record.objects.get(pk=record.pk).freshness == "fresh"


@pytest.mark.django_db
def test_supersede_and_amend_keys_in_front_matter_become_links(space, owner, tmp_path):
    folder = _write(
        tmp_path / "adr",
        {
            "0001-old.md": "---\nstatus: superseded\nsuperseded_by: 0003-new.md\n---\n# Old\n",
            "0002-older.md": "---\nstatus: superseded\nsuperseded-by: 3\n---\n# Older\n",
            "0003-new.md": "---\nstatus: accepted\namends: [4]\n---\n# New\n",
            "0004-base.md": "---\nstatus: accepted\n---\n# Base\n",
        },
    )
    summary = _import(space, folder, owner)
    assert summary.links_unresolved == []
    links = set(
        Link.objects.filter(source__space=space).values_list("source__key", "type", "target__key")
    )
    assert links == {
        ("DEC-3", "supersedes", "DEC-1"),
        ("DEC-3", "supersedes", "DEC-2"),
        ("DEC-3", "amends", "DEC-4"),
    }
    assert Record.objects.get(space=space, number=1).status == "superseded"


@pytest.mark.django_db
def test_the_record_page_shows_what_the_file_said_as_import_metadata(
    client, space, owner, tmp_path
):
    _import(space, _write(tmp_path / "adr", {"001-poll-feeds.md": HYADES_PROPOSED}), owner)
    client.force_login(owner, backend=MODEL_BACKEND)
    page = client.get(f"/s/{space.slug}/DEC-1/").content.decode()
    assert "Imported from" in page and "<code>001-poll-feeds.md</code>" in page
    assert "“Proposed”" in page and "(status table)" in page
    assert "2025-01-07" in page and "the review clock starts here" in page
    unstated = _write(tmp_path / "b", {"0002-x.md": "# 2. X\n\nText.\n"})
    _import(space, unstated, owner)
    page = client.get(f"/s/{space.slug}/DEC-2/").content.decode()
    assert "The file states no status; imported as accepted." in page

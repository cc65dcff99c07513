"""The real corpus: 438 ADRs from 11 public repositories, checked against the authors' own files
(MANIFEST.tsv for statuses, LINKS.tsv for the supersede/amend links they wrote)."""

import csv
import datetime as dt
import re
from collections import Counter

import pytest
from django.db import transaction

from apps.accounts.models import Membership
from apps.interchange import parsing, services, sources
from apps.records.models import Link, Record
from tests.corpus import adr_corpus
from tests.factories import MembershipFactory, SpaceFactory, UserFactory

# The manifest's normalised statuses → the status an import should give (see docs/interchange.md:
# Record.Status has no "on hold" and no "placeholder"; those become tagged proposed/draft, and an
# ADR that states no status is taken as accepted and tagged status-unstated).
EXPECTED_STATUS = {
    "Accepted": "accepted",
    "Proposed": "proposed",
    "Superseded": "superseded",
    "Deprecated": "deprecated",
    "Rejected": "rejected",
    "Draft": "draft",
    "On hold": "proposed",
    "Placeholder": "draft",
    "Unstated": "accepted",
}
TYPED = {"supersedes", "superseded_by", "amends", "amended_by"}


def _rows(name):
    with open(adr_corpus() / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def corpus_import(django_db_setup, django_db_blocker):
    """Import every repository folder into its own space, once for the module."""
    corpus = adr_corpus()
    with django_db_blocker.unblock():
        # One outer transaction, rolled back after the module: each test runs in a savepoint
        # inside it, and nothing is left behind for other modules (even when the import fails:
        # a transaction left open would break every later test of the session).
        outer = transaction.atomic()
        outer.__enter__()
        try:
            user = UserFactory(username="importer", email="importer@example.com")
            result = {}
            for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
                space = SpaceFactory(slug=folder.name.lower().replace("_", "-").replace(".", "-"))
                MembershipFactory(space=space, user=user, role=Membership.Role.EDITOR)
                summary = services.import_files(
                    space=space, files=sources.read_folder(folder), actor=user
                )
                result[folder.name] = (space, summary)
            yield result
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _records_by_path(corpus_import):
    out = {}
    for folder, (space, _) in corpus_import.items():
        for record in Record.objects.filter(space=space):
            out[f"{folder}/{record.source_path}"] = record
    return out


@pytest.mark.django_db
def test_every_adr_in_the_corpus_becomes_a_record(corpus_import):
    by_path = _records_by_path(corpus_import)
    adrs = [r["local_path"] for r in _rows("MANIFEST.tsv") if r["kind"] == "adr"]
    assert len(adrs) == 438
    missing = [p for p in adrs if p not in by_path]
    assert missing == []
    # Index pages are reported as skipped, not imported as decisions.
    assert len(by_path) == 438


@pytest.mark.django_db
def test_imported_statuses_match_the_manifest(corpus_import):
    by_path = _records_by_path(corpus_import)
    rows = [r for r in _rows("MANIFEST.tsv") if r["kind"] == "adr"]
    mismatches = [
        (r["local_path"], r["status_normalized"], by_path[r["local_path"]].status)
        for r in rows
        if by_path[r["local_path"]].status != EXPECTED_STATUS[r["status_normalized"]]
    ]
    share = 1 - len(mismatches) / len(rows)
    print(f"\nstatus match: {share:.1%} ({len(rows) - len(mismatches)}/{len(rows)})")
    for mismatch in mismatches:
        print("  status mismatch:", *mismatch)
    assert share >= 0.95


@pytest.mark.django_db
def test_typed_links_the_authors_wrote_become_links(corpus_import):
    by_path = _records_by_path(corpus_import)
    rows = [r for r in _rows("LINKS.tsv") if r["relation"] in TYPED]
    expected = set()
    for r in rows:
        a, b = by_path[r["source_local_path"]], by_path[r["target_local_path"]]
        link_type = "supersedes" if "supersede" in r["relation"] else "amends"
        expected.add(
            (a.pk, b.pk, link_type) if "_by" not in r["relation"] else (b.pk, a.pk, link_type)
        )
    found = set(Link.objects.values_list("source_id", "target_id", "type"))
    share = len(expected & found) / len(expected)
    print(
        f"\ntyped links recovered: {share:.1%} ({len(expected & found)}/{len(expected)} "
        f"distinct links from {len(rows)} rows)"
    )
    for missing in expected - found:
        print("  missing link:", missing)
    assert share >= 0.95
    # The one partial supersession the manifest keeps as Proposed is not clobbered.
    arachne = by_path["arachne-framework__architecture/adr-015-data-abstraction-model.md"]
    assert arachne.status == Record.Status.PROPOSED


def _pairs():
    return {frozenset(p) for p in Link.objects.values_list("source_id", "target_id")}


@pytest.mark.django_db
def test_plain_mentions_of_other_adrs_become_links(corpus_import):
    """LINKS.tsv rows without a relation word ("see [ADR 20]", "In [ADR003](..) we…"): each pair
    ends up linked (relates_to, or the typed link the files also name)."""
    by_path = _records_by_path(corpus_import)
    rows = [r for r in _rows("LINKS.tsv") if r["relation"] not in TYPED]
    pairs = _pairs()
    missing = [
        (r["source_local_path"], r["target_local_path"], r["raw_line"][:80])
        for r in rows
        if frozenset((by_path[r["source_local_path"]].pk, by_path[r["target_local_path"]].pk))
        not in pairs
    ]
    for m in missing:
        print("  mention not linked:", *m)
    assert len(rows) > 120
    assert 1 - len(missing) / len(rows) >= 0.95
    # The link forms the README names: reference-style, shortcut references ([ADR 20] with a
    # definition below) and autolinked GitHub URLs to the same repository.
    for source, target in [
        ("tendermint__tendermint/docs/architecture/adr-077-block-retention.md", "adr-053"),
        ("nationalarchives__tdr-dev-documentation/architecture-decision-records/0013-", "0020-"),
        ("alphagov__forms/ADR/ADR045-remove-forms-api.md", "ADR034-"),
    ]:
        a = next(r for p, r in by_path.items() if p.startswith(source))
        assert any(
            Link.objects.filter(source=a, target=b).exists()
            or Link.objects.filter(source=b, target=a).exists()
            for p, b in by_path.items()
            if p.rsplit("/", 1)[-1].startswith(target)
        ), (source, target)


@pytest.mark.django_db
def test_plain_text_status_references_become_typed_links(corpus_import):
    """TEXT_REFS.tsv: "Superseded by ADR025", `status: "superseded by ADR-0057"`. Where two files
    share the number (forms ADR025), the one that links back to the source is chosen."""
    by_path = _records_by_path(corpus_import)
    for r in _rows("TEXT_REFS.tsv"):
        source = by_path[r["source_local_path"]]
        candidates = [
            by_path[p]
            for p in (r["candidate_target_local_path"] or r["ambiguous_candidates"]).split(";")
        ]
        if r["wording"].startswith("superseded"):
            found = Link.objects.filter(target=source, type="supersedes", source__in=candidates)
        else:
            found = Link.objects.filter(source=source, type="supersedes", target__in=candidates)
        assert found.count() == 1, r["raw_line"]
    forms13 = by_path[
        "alphagov__forms/ADR/ADR013-use-paper-trail-gem-for-auditing-and-record-backups.md"
    ]
    successor = Link.objects.get(target=forms13, type="supersedes").source
    assert successor.source_path == "ADR/ADR025-remove-papertrail.md"
    assert forms13.status == Record.Status.SUPERSEDED


@pytest.mark.django_db
def test_every_link_joins_adrs_whose_authors_linked_them(corpus_import):
    """No invented links: each one joins a pair from LINKS.tsv or TEXT_REFS.tsv, or a broken link
    the summary says it matched by number."""
    by_path = _records_by_path(corpus_import)
    known = {
        frozenset((by_path[r["source_local_path"]].pk, by_path[r["target_local_path"]].pk))
        for r in _rows("LINKS.tsv")
    }
    for r in _rows("TEXT_REFS.tsv"):
        for target in (r["candidate_target_local_path"] or r["ambiguous_candidates"]).split(";"):
            known.add(frozenset((by_path[r["source_local_path"]].pk, by_path[target].pk)))
    for folder, (_, summary) in corpus_import.items():
        for u in summary.links_unresolved:
            if u["note"].startswith("matched by its number to "):
                target = u["note"].removeprefix("matched by its number to ")
                pair = (by_path[f"{folder}/{u['path']}"].pk, by_path[f"{folder}/{target}"].pk)
                known.add(frozenset(pair))
    ids = {r.pk for r in by_path.values()}
    links = Link.objects.filter(source_id__in=ids).select_related("source", "target")
    invented = [
        (link.source.source_path, link.type, link.target.source_path)
        for link in links
        if frozenset((link.source_id, link.target_id)) not in known
    ]
    assert invented == []
    # And not too few: at least one link per pair the authors linked (95% of them).
    assert links.count() >= 0.95 * len(known)


@pytest.mark.django_db
def test_titles_and_dates_match_the_manifest(corpus_import):
    by_path = _records_by_path(corpus_import)
    rows = [r for r in _rows("MANIFEST.tsv") if r["kind"] == "adr"]
    # The manifest strips markup from titles; the import keeps `code` as the author wrote it.
    # Where a file has no H1 the manifest took its first heading ("Context"); the import takes
    # the file name, which says what the decision is about.
    titles = [
        (r["title"], by_path[r["local_path"]].title)
        for r in rows
        if by_path[r["local_path"]].title.replace("`", "") != " ".join(r["title"].split())
        and by_path[r["local_path"]].title != parsing.file_title(r["local_path"])
    ]
    assert [
        r["local_path"].rsplit("/", 1)[-1]
        for r in rows
        if r["title"] == "Context" and by_path[r["local_path"]].title != "Context"
    ] == ["0025-automatic-code-merge.md"]
    assert titles == []
    checked = 0
    for r in rows:
        written, record = r["date"], by_path[r["local_path"]]
        iso = re.match(r"(\d{4})-(\d{2})-(\d{2})", written)
        dmy = re.fullmatch(r"(\d{2})/(\d{2})/(\d{2,4})", written)
        try:
            if iso:
                expected = dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
            elif dmy:
                year = int(dmy[3]) + (2000 if len(dmy[3]) == 2 else 0)
                expected = dt.date(year, int(dmy[2]), int(dmy[1]))
            elif not written:
                expected = None
            else:
                continue
        except ValueError:
            expected = None  # "2024-14-02": reported (below), imported without a date
        assert record.decided_on == expected, (r["local_path"], written)
        checked += 1
    assert checked >= 400


@pytest.mark.django_db
def test_corpus_summary_reports_broken_links_and_bad_dates(corpus_import):
    """Every row of LINKS_UNRESOLVED.tsv is in the summary with its file and line, unless the
    import could still tell which file was meant (then the pair is linked)."""
    by_path = _records_by_path(corpus_import)
    pairs = _pairs()
    for r in _rows("LINKS_UNRESOLVED.tsv"):
        folder, path = r["source_local_path"].split("/", 1)
        summary = corpus_import[folder][1]
        reported = [
            u
            for u in summary.links_unresolved
            if u["path"] == path and u["target"].rstrip(".") == r["target_as_written"].rstrip(".")
        ]
        if reported:
            assert all(isinstance(u["line"], int) and u["line"] > 0 for u in reported)
            continue
        assert r["reason"].startswith("broken link inside"), r
        meant = f"{folder}/{r['resolved_path'].rstrip('.')}.md"
        source = by_path[r["source_local_path"]]
        assert frozenset((source.pk, by_path[meant].pk)) in pairs, r
    _, forms = corpus_import["alphagov__forms"]
    assert {
        "path": "ADR/ADR018-use-govuk-organisation-api.md",
        "line": 11,
        "relation": "relates",
        "target": "./AD015-idp-authentication",
        "note": "",
    } in forms.links_unresolved
    _, gov = corpus_import["cisagov__manage.get.gov"]
    assert {
        "path": "docs/architecture/decisions/0025-caching.md",
        "message": "invalid date '2024-14-02'; imported without a date",
    } in gov.problems
    counts = Counter(s["reason"] for s in corpus_import["tendermint__tendermint"][1].skipped)
    assert counts == {"index page, not a decision": 1}

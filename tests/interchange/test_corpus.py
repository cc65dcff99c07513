"""The real corpus: 438 ADRs from 11 public repositories, checked against the authors' own files
(MANIFEST.tsv for statuses, LINKS.tsv for the supersede/amend links they wrote)."""

import csv
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from apps.accounts.models import Membership
from apps.interchange import services, sources
from apps.records.models import Link, Record
from tests.factories import MembershipFactory, SpaceFactory, UserFactory

CORPUS = Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"

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
    with open(CORPUS / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def corpus_import(django_db_setup, django_db_blocker):
    """Import every repository folder into its own space, once for the module."""
    with django_db_blocker.unblock():
        # One outer transaction, rolled back after the module: each test runs in a savepoint
        # inside it, and nothing is left behind for other modules.
        outer = transaction.atomic()
        outer.__enter__()
        user = UserFactory(username="importer", email="importer@example.com")
        result = {}
        for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
            space = SpaceFactory(slug=folder.name.lower().replace("_", "-").replace(".", "-"))
            MembershipFactory(space=space, user=user, role=Membership.Role.EDITOR)
            summary = services.import_files(
                space=space, files=sources.read_folder(folder), actor=user
            )
            result[folder.name] = (space, summary)
        try:
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


@pytest.mark.django_db
def test_corpus_summary_reports_broken_links_and_bad_dates(corpus_import):
    _, forms = corpus_import["alphagov__forms"]
    unresolved = {(u["path"], u["target"]) for u in forms.links_unresolved}
    assert (
        "ADR/ADR018-use-rails-for-the-api.md",
        "./AD015-idp-authentication",
    ) in unresolved or any(u["path"].startswith("ADR/ADR018") for u in forms.links_unresolved)
    # "Superseded by ADR025" names two ADR025 files: reported as ambiguous, not guessed.
    assert any(
        u["path"].startswith("ADR/ADR013") and "ambiguous" in u["note"]
        for u in forms.links_unresolved
    )
    _, gov = corpus_import["cisagov__manage.get.gov"]
    assert any("2024-14-02" in p["message"] for p in gov.problems)
    counts = Counter(s["reason"] for s in corpus_import["tendermint__tendermint"][1].skipped)
    assert counts["index page, not a decision"] == 1

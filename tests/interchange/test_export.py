"""Export a space to markdown, import it into an empty space: the same records and links."""

import datetime as dt
import io
import zipfile

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Membership
from apps.interchange import services, sources
from apps.records import services as record_services
from apps.records.models import Link, Record
from tests.factories import MembershipFactory, SpaceFactory, TeamFactory, make_record

FIELDS = (
    "kind",
    "key",
    "number",
    "title",
    "summary",
    "body",
    "status",
    "owner_user_id",
    "owner_team_id",
    "tags",
    "anchors",
    "reversibility",
    "impact",
    "decided_on",
    "deciders",
    "valid_until",
    "next_review_at",
    "last_verified_at",
    "archived_at_is_set",
)


def _state(space):
    records = {}
    for r in Record.objects.filter(space=space):
        r.archived_at_is_set = r.archived_at is not None
        records[r.key] = {name: getattr(r, name) for name in FIELDS}
    links = set(
        Link.objects.filter(source__space=space).values_list(
            "source__key", "type", "target__key", "note"
        )
    )
    return records, links


@pytest.fixture
def rich_space(space, owner, admin_user, adr_folder):
    """The six real ADRs, plus everything a person adds in the app afterwards."""
    services.import_files(space=space, files=sources.read_folder(adr_folder), actor=owner)
    team = TeamFactory(slug="platform")
    dec10 = Record.objects.get(space=space, key="DEC-10")
    record_services.record_update(
        record=dec10,
        actor=owner,
        expected_version=None,
        changes={
            "summary": "Code and data live apart; stacks per project.",
            "tags": ["terraform", "layout"],
            "anchors": ["terraform/**", "projects/*/main.tf"],
            "reversibility": "two_way",
            "impact": "high",
            "valid_until": dt.date(2027, 3, 1),
            "owner_user": owner,
        },
    )
    record_services.record_verify(record=dec10, actor=owner)
    dec17 = Record.objects.get(space=space, key="DEC-17")
    record_services.record_update(
        record=dec17, actor=owner, expected_version=None, changes={"owner_team": team}
    )
    made = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never log tokens",
        body="Agents must not print **secrets**.\n\n---\n\nEven in tests.",
        tags=["security"],
        status="accepted",
    )
    record_services.record_link(source=made, target=dec10, type="constrains", actor=owner)
    record_services.record_link(source=dec17, target=made, type="depends_on", actor=owner)
    # relates_to both ways: an export keeps each direction.
    record_services.record_link(source=made, target=dec17, type="relates_to", actor=owner)
    record_services.record_link(source=dec17, target=made, type="relates_to", actor=owner)
    old = make_record(space=space, actor=owner, title="Old idea", status="proposed")
    record_services.record_archive(record=old, actor=owner)
    intent = make_record(space=space, actor=owner, kind="intent", title="Cheap infrastructure")
    record_services.record_link(source=dec10, target=intent, type="implements", actor=owner)
    record_services.record_link(
        source=dec10, target=made, type="conflicts_with", actor=owner, note="Only in CI"
    )
    # Superseded "in part": the older record keeps its own status, and the note says why.
    partial_old = make_record(space=space, actor=owner, title="Queue everything", status="proposed")
    partial_new = make_record(space=space, actor=owner, title="Queue payments only")
    record_services.record_link(
        source=partial_new, target=partial_old, type="supersedes", actor=owner, note="Partly: API"
    )
    record_services.record_update(
        record=Record.objects.get(pk=partial_old.pk),
        actor=owner,
        expected_version=None,
        changes={"status": "proposed"},
    )
    # A successor archived after it superseded (an archived record cannot gain that link).
    gone_old = make_record(space=space, actor=owner, title="Nightly batch", status="accepted")
    gone_new = make_record(space=space, actor=owner, title="Hourly batch", status="accepted")
    record_services.record_supersede(old=gone_old, new=gone_new, actor=owner)
    record_services.record_archive(record=Record.objects.get(pk=gone_new.pk), actor=owner)
    return space


@pytest.mark.django_db
def test_export_then_import_into_an_empty_space_round_trips_every_field_and_link(
    rich_space, owner, tmp_path
):
    out = tmp_path / "export"
    call_command(
        "export_markdown",
        str(out),
        space=rich_space.slug,
        as_user=owner.email,
        stdout=io.StringIO(),
    )
    assert (out / "index.md").exists()
    empty = SpaceFactory(slug="copy")
    MembershipFactory(space=empty, user=owner, role=Membership.Role.EDITOR)

    summary = services.import_files(space=empty, files=sources.read_folder(out), actor=owner)

    assert summary.skipped == [{"path": "index.md", "reason": "index page, not a decision"}]
    assert summary.links_unresolved == [] and summary.problems == []
    before, after = _state(rich_space), _state(empty)
    # Every link type is in the space (so none can be lost unnoticed), each with its note.
    assert {t for _, t, _, _ in before[1]} == set(Link.Type.values)
    assert len(before[1]) == 11
    assert after[1] == before[1]
    assert set(after[0]) == set(before[0])
    for key, fields in before[0].items():
        assert after[0][key] == fields, key
    statuses = {key: fields["status"] for key, fields in after[0].items()}
    assert statuses["DEC-45"] == "superseded"
    assert list(statuses.values()).count("superseded") == 3  # DEC-45, l4b, "Nightly batch"
    assert "proposed" in statuses.values()  # "Queue everything", superseded only in part


@pytest.mark.django_db
def test_exported_files_are_madr_with_front_matter_and_the_body_unchanged(rich_space, owner):
    files = {f.path: f.content for f in services.export_space(space=rich_space, actor=owner)}
    text = files["govuk-aws/0010-terraform-directory-structure.md"]
    head, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(head)
    record = Record.objects.get(space=rich_space, key="DEC-10")
    # MADR: the title as an H1, then the body as it is in the app.
    assert body == f"# {record.title}\n\n{record.body}"
    assert meta["key"] == "DEC-10" and meta["status"] == "accepted"
    assert meta["owner"] == owner.email
    assert meta["anchors"] == ["terraform/**", "projects/*/main.tf"]
    assert meta["date"] == dt.date(2017, 7, 4)
    assert meta["valid_until"] == dt.date(2027, 3, 1)
    assert dt.datetime.fromisoformat(meta["last_verified_at"]) <= timezone.now()
    assert meta["links"] == {"conflicts_with": ["GRD-1"], "implements": ["INT-1"]}
    assert meta["link_notes"] == {"conflicts_with GRD-1": "Only in CI"}
    guardrail = next(c for p, c in files.items() if p.startswith("GRD-1-"))
    assert "links:\n  constrains:\n  - DEC-10\n" in guardrail
    assert (
        "| DEC-17 | [17. Terraform Data Structure](govuk-aws/0017-terraform-data-structure.md) | accepted |"
        in files["index.md"]
    )


@pytest.mark.django_db
def test_exporting_again_over_the_same_space_changes_nothing(rich_space, owner, tmp_path):
    files = [
        sources.SourceFile(f.path, f.content.encode())
        for f in services.export_space(space=rich_space, actor=owner)
    ]
    before = _state(rich_space)
    summary = services.import_files(space=rich_space, files=files, actor=owner)
    assert summary.created == [] and summary.updated == []
    assert _state(rich_space) == before


@pytest.mark.django_db
def test_export_is_for_people_who_can_see_the_space(rich_space, outsider):
    with pytest.raises(Exception) as info:
        services.export_space(space=rich_space, actor=outsider)
    assert info.value.__class__.__name__ == "NotFound"


@pytest.mark.django_db
def test_export_zip_download_holds_every_record(client, rich_space, viewer):
    client.force_login(viewer)
    response = client.get(f"/s/{rich_space.slug}/export.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert len(names) == Record.objects.filter(space=rich_space).count() + 1
    assert "payments/index.md" in names


@pytest.mark.django_db
def test_importing_another_spaces_export_never_overwrites_records_with_the_same_key(
    rich_space, owner
):
    files = [
        sources.SourceFile(f.path, f.content.encode())
        for f in services.export_space(space=rich_space, actor=owner)
    ]
    other = SpaceFactory(slug="other")
    MembershipFactory(space=other, user=owner, role=Membership.Role.EDITOR)
    mine = make_record(space=other, actor=owner, title="Our own DEC-10", number=10)

    summary = services.import_files(space=other, files=files, actor=owner)

    assert Record.objects.get(pk=mine.pk).title == "Our own DEC-10"
    assert len(summary.created) == Record.objects.filter(space=rich_space).count()
    copied = Record.objects.get(space=other, title="10. Terraform directory structure")
    assert copied.key != "DEC-10"
    # Links inside the export still join the copies, by the keys written in the files.
    assert Link.objects.filter(source__space=other, target=copied, type="amends").exists()


HOSTILE_TITLES = [
    'Use "quotes": a & b # not a comment',
    "- starts like a list item",
    "? looks like a key",
    "yes",
    "null",
    "2024-01-01",
    "*alias &anchor !tag %directive @at `tick`",
    "Tab\tand  double  spaces",
    "Émoji 🚀 ünïcödé 中文 עברית",
    "line one\nline two",
    "'single' | pipe > gt",
    "...",
    "---",
    "word " * 39 + "end",  # 200 characters: longer than the YAML line width
]


@pytest.mark.django_db
def test_hostile_values_round_trip_exactly(space, owner):
    """Titles full of YAML syntax, bodies with front-matter-like blocks and CRLF, unicode and
    newlines in deciders: an export imported into an empty space gives them back
    character for character."""
    body = (
        "---\nfake: front matter\n---\n# Heading\n\n---\n\n...\n\r\nWindows\r\nline "
        "endings\r\n\ttab  \n<script>alert(1)</script>\n\n"
    )
    for n, title in enumerate(HOSTILE_TITLES):
        make_record(
            space=space,
            actor=owner,
            title=title,
            body=body + str(n),
            summary="s: #1 ' \" | > \t tab {x} [y] &z *w",
            # YAML-hostile tags the tag rule allows (records.services.tag_problem).
            tags=["yes", "x: y", "a #b", "null", "ünï", "007", "1.5"],
            anchors=["src/{a,b}/**", "*.py", "# hash", "[x].md"],
            deciders="Ann\nBob,  Cy: 'lead'",
            status="proposed",
        )
    files = [
        sources.SourceFile(f.path, f.content.encode())
        for f in services.export_space(space=space, actor=owner)
    ]
    empty = SpaceFactory(slug="copy")
    MembershipFactory(space=empty, user=owner, role=Membership.Role.EDITOR)

    summary = services.import_files(space=empty, files=files, actor=owner)

    assert len(summary.created) == len(HOSTILE_TITLES) and summary.problems == []
    index = next(f.data.decode() for f in files if f.path == "index.md")
    # One row per record: newlines, pipes and brackets in titles do not break the table.
    assert len([row for row in index.splitlines() if row.startswith("| DEC-")]) == len(
        HOSTILE_TITLES
    )
    assert "| DEC-10 | [line one line two](DEC-10-line-one-line-two.md) | proposed |" in index
    before, after = _state(space), _state(empty)
    assert {fields["title"] for fields in after[0].values()} == set(HOSTILE_TITLES)
    for key, fields in before[0].items():
        assert after[0][key] == fields, key
    assert after[0]["DEC-1"]["body"] == body + "0"
    assert after[0]["DEC-1"]["tags"] == ["yes", "x: y", "a #b", "null", "ünï", "007", "1.5"]


@pytest.mark.django_db
def test_reimporting_an_export_keeps_verifications_and_edits_made_since(rich_space, owner):
    files = [
        sources.SourceFile(f.path, f.content.encode())
        for f in services.export_space(space=rich_space, actor=owner)
    ]
    copy = SpaceFactory(slug="copy")
    MembershipFactory(space=copy, user=owner, role=Membership.Role.EDITOR)
    services.import_files(space=copy, files=files, actor=owner)
    dec10 = Record.objects.get(space=copy, key="DEC-10")
    record_services.record_verify(record=dec10, actor=owner)
    record_services.record_update(
        record=Record.objects.get(pk=dec10.pk),
        actor=owner,
        expected_version=None,
        changes={"tags": ["terraform"], "impact": "low"},
    )
    verified = Record.objects.get(pk=dec10.pk)

    again = services.import_files(space=copy, files=files, actor=owner)

    after = Record.objects.get(pk=dec10.pk)
    assert again.updated == [] and again.skipped[1:] == []
    assert (after.last_verified_at, after.next_review_at) == (
        verified.last_verified_at,
        verified.next_review_at,
    )
    assert (after.tags, after.impact, after.version) == (["terraform"], "low", verified.version)


@pytest.mark.django_db
def test_an_export_never_names_a_file_outside_its_folder(space, owner, tmp_path):
    hostile = [
        "../../etc/cron.d/x.md",
        "/tmp/abs.md",
        "a/../../b.md",
        "c:\\\\evil.md",
        "sub/index.md",
    ]
    for n, path in enumerate(hostile, 1):
        record = make_record(space=space, actor=owner, title=f"Record {n}")
        Record.objects.filter(pk=record.pk).update(source_path=path)
    out = tmp_path / "out"
    call_command(
        "export_markdown", str(out), space=space.slug, as_user=owner.email, stdout=io.StringIO()
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.md"))
    assert written == [f"DEC-{n}-record-{n}.md" for n in range(1, 6)] + ["index.md"]
    assert not (tmp_path / "b.md").exists()

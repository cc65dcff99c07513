"""Hostile and broken input: each bad file is reported and skipped; the rest still import, and
no bad file leaves a partial record behind."""

import io
import os
import stat
import zipfile

import pytest

from apps.core.errors import InvalidInput
from apps.interchange import services, sources
from apps.records.models import Record, Revision

GOOD = "# 1. Use PostgreSQL\n\nDate: 2024-01-31\n\n## Status\n\nAccepted\n\n## Context\n\nWe need a database.\n"


def _reasons(summary):
    return {s["path"]: s["reason"] for s in summary.skipped}


@pytest.fixture
def hostile_folder(tmp_path, settings):
    settings.CONTEXTKB_IMPORT_MAX_FILE_BYTES = 10_000
    folder = tmp_path / "adr"
    folder.mkdir()
    (folder / "0001-good.md").write_text(GOOD)
    (folder / "0002-latin1.md").write_bytes("# 2. Caf\xe9\n\nStatus: accepted\n".encode("latin-1"))
    (folder / "0003-binary.md").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    )
    (folder / "0004-empty.md").write_bytes(b"")
    (folder / "0005-blank.md").write_text("  \n\n\t\n")
    (folder / "0006-huge.md").write_text("# 6. Huge\n\n" + "x" * 20_000)
    (folder / "0007-bad-yaml.md").write_text(
        "---\nstatus: [accepted\ndate: 2024-01-01\n---\n# 7. Bad\n"
    )
    (folder / "0008-yaml-list.md").write_text("---\n- just\n- a list\n---\n# 8. List\n")
    (folder / "0009-nul.md").write_bytes(b"# 9. Nul\n\nhello\x00world\n")
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nNot part of the import.\n")
    os.symlink(outside, folder / "0010-link.md")
    os.symlink(tmp_path, folder / "loop")
    return folder


@pytest.mark.django_db
def test_each_bad_file_in_a_folder_is_reported_and_the_good_one_still_imports(
    space, owner, hostile_folder
):
    summary = services.import_files(
        space=space, files=sources.read_folder(hostile_folder), actor=owner
    )
    reasons = _reasons(summary)
    assert reasons == {
        "0002-latin1.md": "not UTF-8 text (invalid byte at position 8)",
        "0003-binary.md": "binary file, not markdown",
        "0004-empty.md": "empty file",
        "0005-blank.md": "empty file",
        "0006-huge.md": "larger than 10,000 bytes",
        "0007-bad-yaml.md": reasons["0007-bad-yaml.md"],
        "0008-yaml-list.md": "front matter is not a YAML mapping",
        "0009-nul.md": "binary file, not markdown",
        "0010-link.md": "symbolic link, not followed",
        "loop": "symbolic link, not followed",
    }
    assert reasons["0007-bad-yaml.md"].startswith("front matter is not valid YAML (line 3)")
    assert [c["path"] for c in summary.created] == ["0001-good.md"]
    assert list(Record.objects.filter(space=space).values_list("key", "title")) == [
        ("DEC-1", "1. Use PostgreSQL")
    ]
    assert not Record.objects.filter(title="Secret").exists()


@pytest.mark.django_db
def test_a_file_the_record_service_refuses_leaves_no_partial_record(space, owner, tmp_path):
    folder = tmp_path / "adr"
    folder.mkdir()
    (folder / "0001-good.md").write_text(GOOD)
    # Fits the file limit but not the record body limit: refused by record_create as a whole.
    (folder / "0002-long.md").write_text("# 2. Long\n\n" + "y" * 210_000)
    summary = services.import_files(space=space, files=sources.read_folder(folder), actor=owner)
    assert _reasons(summary)["0002-long.md"].startswith("The record is not valid. (body:")
    assert Record.objects.filter(space=space).count() == 1
    assert Revision.objects.filter(record__space=space).count() == 1


def _zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.django_db
def test_zip_slip_absolute_paths_and_symlinks_in_a_zip_are_skipped(space, owner):
    data = _zip(
        [
            ("adr/0001-good.md", GOOD, 0),
            ("adr/../../etc/0002-escape.md", "# 2. Escape\n", 0),
            ("/tmp/0003-absolute.md", "# 3. Absolute\n", 0),
            ("adr/..\\..\\0004-windows.md", "# 4. Windows\n", 0),
            ("adr/0005-link.md", "/etc/passwd", stat.S_IFLNK | 0o777),
            ("adr/0006-bad.md", b"\xff\xfe\xfa", 0),
        ]
    )
    summary = services.import_files(space=space, files=sources.read_zip(data), actor=owner)
    assert _reasons(summary) == {
        "adr/../../etc/0002-escape.md": "path escapes the folder (zip-slip)",
        "/tmp/0003-absolute.md": "absolute path in the zip",
        "adr/..\\..\\0004-windows.md": "path escapes the folder (zip-slip)",
        "adr/0005-link.md": "symbolic link, not followed",
        "adr/0006-bad.md": "not UTF-8 text (invalid byte at position 0)",
    }
    assert [c["path"] for c in summary.created] == ["adr/0001-good.md"]
    assert Record.objects.filter(space=space).count() == 1


@pytest.mark.django_db
def test_a_zip_member_lying_about_its_size_is_stopped_at_the_limit(space, owner, settings):
    settings.CONTEXTKB_IMPORT_MAX_FILE_BYTES = 1000
    data = bytearray(_zip([("0001-bomb.md", "# 1. Bomb\n" + "z" * 50_000, 0)]))
    # Patch the local and central headers' uncompressed size down to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    summary = services.import_files(space=space, files=sources.read_zip(bytes(data)), actor=owner)
    assert summary.created == []
    assert len(summary.skipped) == 1 and summary.skipped[0]["path"] == "0001-bomb.md"
    assert Record.objects.filter(space=space).count() == 0


@pytest.mark.django_db
def test_an_upload_that_is_not_a_zip_is_refused_before_anything_runs(space, owner):
    with pytest.raises(InvalidInput, match="not a zip"):
        services.import_job_create(space=space, actor=owner, data=b"hello", filename="x.zip")
    with pytest.raises(InvalidInput, match="not a readable zip"):
        sources.read_zip(b"PK\x03\x04 broken")


@pytest.mark.django_db
def test_pathological_markdown_is_read_in_linear_time(space, owner, tmp_path):
    """Inputs that make naive regexes quadratic (hours for a 900 kB file) import in seconds."""
    import time

    n = 900_000
    folder = tmp_path / "adr"
    folder.mkdir()
    bodies = {
        # The heading after a first line, so it stays in the body (a leading title H1 goes).
        "0001-spaces.md": "Intro\n\n# " + " " * n + "x\n",
        "0002-brackets.md": "# 2. B\n\n" + "[" * n,
        "0003-nested.md": "# 3. N\n\n" + "[a[b]c](" * (n // 8),
        "0004-status.md": "# 4. S\n\n## Status\n\n" + "{a|" * (n // 3),
        "0005-links.md": "# 5. L\n\n" + "[a](0001-spaces.md) " * 9000,
    }
    for name, text in bodies.items():
        (folder / name).write_text(text)
    started = time.monotonic()
    summary = services.import_files(space=space, files=sources.read_folder(folder), actor=owner)
    assert time.monotonic() - started < 30
    # Read in full, then refused by the record service as too long for a body.
    assert sorted(_reasons(summary)) == [
        "0001-spaces.md",
        "0002-brackets.md",
        "0003-nested.md",
        "0004-status.md",
    ]
    assert all("body" in reason for reason in _reasons(summary).values()), _reasons(summary)
    assert [c["path"] for c in summary.created] == ["0005-links.md"]
    assert {
        "path": "0005-links.md",
        "message": "more than 1000 links; only the first 1000 were followed",
    } in summary.problems


@pytest.mark.django_db
def test_front_matter_that_expands_or_nests_without_end_is_skipped_or_ignored(
    space, owner, tmp_path
):
    folder = tmp_path / "adr"
    folder.mkdir()
    # "Billion laughs": nine levels of aliases, each nine times the one before.
    laughs = ['a0: &a0 ["lol"]'] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)
    ]
    (folder / "0001-laughs.md").write_text(
        "---\n" + "\n".join(laughs) + "\ndeciders: *a9\nstatus: *a9\ndate: *a9\n---\n# 1. Laughs\n"
    )
    (folder / "0002-deep.md").write_text(
        "---\nx: " + "[" * 5000 + "]" * 5000 + "\n---\n# 2. Deep\n"
    )
    summary = services.import_files(space=space, files=sources.read_folder(folder), actor=owner)
    laughs_record = Record.objects.get(space=space, number=1)
    assert laughs_record.deciders == "" and laughs_record.status == "accepted"
    assert _reasons(summary) == {"0002-deep.md": _reasons(summary)["0002-deep.md"]}
    assert _reasons(summary)["0002-deep.md"].startswith("front matter is")


@pytest.mark.django_db
def test_a_zip_listing_too_many_entries_is_refused_whole_even_when_its_end_record_lies(
    space, owner, settings
):
    settings.CONTEXTKB_IMPORT_MAX_FILES = 10  # so at most 40 entries of any kind
    many = _zip([(f"adr/{n:04d}-x.md", GOOD, 0) for n in range(41)])
    with pytest.raises(InvalidInput, match="lists 41 entries; at most 40"):
        sources.read_zip(many)
    with pytest.raises(InvalidInput, match="lists 41 entries"):
        services.import_job_create(space=space, actor=owner, data=many, filename="x.zip")
    # The end-of-central-directory record claims 2 entries; the directory itself lists 41.
    liar = bytearray(many)
    at = liar.rfind(b"PK\x05\x06")
    liar[at + 8 : at + 12] = (2).to_bytes(2, "little") * 2
    with pytest.raises(InvalidInput, match="lists 41 entries"):
        sources.read_zip(bytes(liar))
    assert Record.objects.count() == 0
    # Forty entries (images and all) are fine.
    assert len(sources.read_zip(_zip([(f"{n}.png", b"x", 0) for n in range(40)]))) == 0


@pytest.mark.django_db
def test_files_past_the_file_count_limit_are_reported_in_one_line(space, owner, settings, tmp_path):
    settings.CONTEXTKB_IMPORT_MAX_FILES = 3
    folder = tmp_path / "adr"
    folder.mkdir()
    for n in range(1, 8):
        (folder / f"{n:04d}-decision.md").write_text(GOOD.replace("1. Use", f"{n}. Use"))
    entries = [(f"adr/{n:04d}-decision.md", GOOD, 0) for n in range(1, 8)]
    for files in (sources.read_folder(folder), sources.read_zip(_zip(entries))):
        summary = services.import_files(space=space, files=files, actor=owner, dry_run=True)
        assert len(summary.created) == 3
        assert summary.skipped == [
            {"path": "(4 more files)", "reason": "more than 3 files; not read"}
        ]

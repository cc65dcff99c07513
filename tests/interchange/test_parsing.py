"""Reading one ADR: status words and the links written in it (no database)."""

import pytest

from apps.interchange import adr_links, adr_status, parsing


@pytest.mark.parametrize(
    ("written", "status", "tags"),
    [
        ("Accepted", "accepted", []),
        ("✅ Accepted", "accepted", []),
        ("PROPOSED", "proposed", []),
        ("🤔 Proposed.", "proposed", []),
        ("Implemented (moved to cosmos-sdk)", "accepted", []),
        ("Approved", "accepted", []),
        ("In Review", "proposed", []),
        ("Pending", "proposed", []),
        ("⌛️ Superseded by [036. Multi-cluster](036-multi-cluster.md)", "superseded", []),
        ("Superseded by ADR044. Note that this ADR was never implemented.", "superseded", []),
        ("accepted; supersedes ADR-0045", "accepted", []),
        ("Accepted / Amended by 17. Terraform Data Structure", "accepted", []),
        ("Deprecated (no superseding ADR)", "deprecated", []),
        ("❌ Rejected (see 019)", "rejected", []),
        ("Declined", "rejected", []),
        ("Draft.", "draft", []),
        ("🤔 Incomplete", "draft", []),
        ("on hold", "proposed", ["status-on-hold"]),
        ("Accepted or Rejected", "draft", ["status-placeholder"]),
        ("{Deprecated|Proposed|Accepted|Declined}", "draft", ["status-placeholder"]),
        ("", "accepted", ["status-unstated"]),
        ("Frobnicated", "draft", ["status-frobnicated"]),
        ('<img src=x onerror="alert(1)"> Frobnicated', "draft", ["status-frobnicated"]),
        ("accepted <!-- proposed | rejected | accepted -->", "accepted", []),
        ("<b>Rejected</b><br>", "rejected", []),
    ],
)
def test_status_words_map_to_record_statuses(written, status, tags):
    reading = adr_status.normalise_status(written)
    assert (reading.status, reading.tags) == (status, tags)


def test_partly_superseded_is_superseded_in_part():
    assert adr_status.normalise_status("Partly superseded").partial is True


def _links(body):
    return [(link.relation, link.url, link.line_no) for link in adr_links.find_links(body)]


def test_reference_style_links_and_bare_github_urls_are_found():
    body = (
        "# ADR 7\n"
        "Supersedes [ADR 3][adr3] and [ADR 4][].\n"
        "See https://github.com/acme/kb/blob/main/docs/adr/0005-x.md for more.\n"
        "\n"
        "[adr3]: ./0003-old.md\n"
        '[ADR 4]: 0004-older.md "title"\n'
    )
    assert _links(body) == [
        ("supersedes", "./0003-old.md", 2),
        ("supersedes", "0004-older.md", 2),  # after " and ": same relation
        ("relates", "https://github.com/acme/kb/blob/main/docs/adr/0005-x.md", 3),
    ]


def test_shortcut_reference_links_and_github_autolinks_are_found():
    body = (
        "See [ADR 20] for more, and [Not  a ref] nor ![ADR 20].\n"
        "Supersedes [ADR  13].\n"
        "- State sync: <https://github.com/acme/kb/blob/main/docs/adr/0053-sync.md>\n"
        "\n"
        "[ADR 20]: 0020-sqs.md\n"
        "[adr 13]: ./0013-queues.md\n"
    )
    assert _links(body) == [
        ("relates", "0020-sqs.md", 1),
        ("supersedes", "./0013-queues.md", 2),  # labels match across case and spaces
        ("relates", "https://github.com/acme/kb/blob/main/docs/adr/0053-sync.md", 3),
    ]


def test_trailing_and_plain_text_relations_are_read():
    body = (
        "[ADR-0045](0045-x.md), which this decision supersedes.\n"
        "Superseded by ADR025\n"
        "Amended by [17. Data](0017-data.md)\n"
        "```\nSuperseded by [not a link](in-code.md)\n```\n"
    )
    found = adr_links.find_links(body)
    assert [(f.relation, f.url) for f in found] == [
        ("supersedes", "0045-x.md"),
        ("superseded_by", "ADR025"),
        ("amended_by", "0017-data.md"),
    ]
    assert (found[1].number, found[1].prefix) == (25, "adr")


def test_links_resolve_relative_case_insensitive_extensionless_and_github_urls():
    paths = {
        p.lower(): p
        for p in ["docs/adr/0002-b.md", "docs/adr/ADR-004-c.md", "packages/x/docs/adr/0001-a.md"]
    }
    source = "docs/adr/0001-a.md"
    assert (
        adr_links.resolve_url("0002-b.md#context", source=source, paths=paths)
        == paths["docs/adr/0002-b.md"]
    )
    assert (
        adr_links.resolve_url("./adr-004-c", source=source, paths=paths) == "docs/adr/ADR-004-c.md"
    )
    assert (
        adr_links.resolve_url("../../packages/x/docs/adr/0001-a.md", source=source, paths=paths)
        == "packages/x/docs/adr/0001-a.md"
    )
    url = "https://github.com/acme/kb/blob/main/docs/adr/0002-b.md"
    assert adr_links.resolve_url(url, source=source, paths=paths) == "docs/adr/0002-b.md"
    # A GitHub URL cut short before ".md" (as written in manage.get.gov's ADR 31).
    cut = "https://github.com/acme/kb/blob/main/docs/adr/0002-b."
    assert adr_links.resolve_url(cut, source=source, paths=paths) == "docs/adr/0002-b.md"
    assert (
        adr_links.resolve_url("https://example.com/0002-b.md", source=source, paths=paths) is None
    )
    assert adr_links.resolve_url("0009-missing.md", source=source, paths=paths) is None


def test_front_matter_errors_name_the_line():
    with pytest.raises(parsing.FrontMatterError, match=r"line 3"):
        parsing.parse_adr("x.md", "---\ntitle: ok\nstatus: [oops\n---\n# X\n")

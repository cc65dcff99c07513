"""The space page's tag filter follows every record write at once (issue 12): the tag counts
the records table's triggers keep, read by the page instead of a scan of the space's records."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.records import services
from apps.records.space_tags import SpaceTag
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _tag_options(client, space) -> list[str]:
    """The tags the page's tag filter offers."""
    body = client.get(reverse("web:space_home", kwargs={"slug": space.slug})).content.decode()
    select = re.search(r'<select name="tag">(.*?)</select>', body, re.S).group(1)
    return [v for v in re.findall(r'<option value="([^"]*)"', select) if v]


def _tag_filter_keys(client, space, tag) -> list[str]:
    body = client.get(reverse("web:space_home", kwargs={"slug": space.slug}), {"tag": tag})
    return sorted(set(re.findall(r">((?:DEC|CON|INT|GRD)-\d+)</a>", body.content.decode())))


def _edit_tags(record, owner, tags):
    record.refresh_from_db()
    return services.record_update(
        record=record, actor=owner, expected_version=record.version, changes={"tags": tags}
    )


def test_create_adds_its_tags(as_user, owner, space, decision):
    client = as_user(owner)
    assert _tag_options(client, space) == ["database", "ledger"]
    make_record(space=space, actor=owner, kind="intent", title="Fast payouts", tags=["payouts"])
    assert _tag_options(client, space) == ["database", "ledger", "payouts"]
    assert _tag_filter_keys(client, space, "payouts") == ["INT-1"]


def test_edit_removes_and_adds_tags(as_user, owner, space, decision, constraint):
    client = as_user(owner)
    assert _tag_options(client, space) == ["database", "ledger", "money"]
    _edit_tags(decision, owner, ["ledger", "audit"])
    assert _tag_options(client, space) == ["audit", "ledger", "money"]
    assert _tag_filter_keys(client, space, "audit") == ["DEC-1"]
    assert _tag_filter_keys(client, space, "database") == []
    # A tag two records share stays until the last of them drops it.
    _edit_tags(constraint, owner, ["money", "ledger"])
    _edit_tags(decision, owner, ["audit"])
    assert _tag_options(client, space) == ["audit", "ledger", "money"]
    _edit_tags(constraint, owner, ["money"])
    assert _tag_options(client, space) == ["audit", "money"]


def test_archive_and_unarchive(as_user, owner, space, decision, constraint):
    client = as_user(owner)
    services.record_archive(record=decision, actor=owner)
    assert _tag_options(client, space) == ["money"]
    decision.refresh_from_db()
    services.record_unarchive(record=decision, actor=owner)
    assert _tag_options(client, space) == ["database", "ledger", "money"]
    assert _tag_filter_keys(client, space, "ledger") == ["DEC-1"]


def test_restore_brings_back_old_tags(as_user, owner, space, decision):
    client = as_user(owner)
    first = decision.revisions.order_by("number").first()
    _edit_tags(decision, owner, ["audit"])
    assert _tag_options(client, space) == ["audit"]
    decision.refresh_from_db()
    services.record_restore_revision(
        record=decision, revision=first, actor=owner, expected_version=decision.version
    )
    assert _tag_options(client, space) == ["database", "ledger"]
    assert _tag_filter_keys(client, space, "database") == ["DEC-1"]


def test_counts_match_the_records_after_deletes(owner, space, decision, constraint):
    """Deleting records (a space removed, cleanup) lowers the counts too."""
    decision.delete()
    counts = dict(SpaceTag.objects.filter(space=space).values_list("tag", "records"))
    assert counts == {"database": 0, "ledger": 0, "money": 1}


def test_space_page_queries_do_not_grow_with_records(as_user, owner, space, decision):
    client = as_user(owner)
    url = reverse("web:space_home", kwargs={"slug": space.slug})

    def page_queries(params):
        client.get(url, params)  # warm: session, caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, params).status_code == 200
        return len(captured)

    asks: list[dict[str, str]] = [{}, {"q": "ledger"}, {"tag": "ledger"}]
    small = [page_queries(params) for params in asks]
    for i in range(30):
        make_record(
            space=space, actor=owner, kind="decision", title=f"Ledger rule {i}", tags=[f"t{i}"]
        )
    large = [page_queries(params) for params in asks]
    assert large == small

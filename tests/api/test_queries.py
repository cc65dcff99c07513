"""List endpoints run the same number of queries whatever the page size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership
from apps.records import services
from tests.api.conftest import bearer
from tests.factories import MembershipFactory, SpaceFactory, TeamFactory, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def many(space, owner, teammate):
    # Enough of everything that a page of 2 and a page of 100 differ: spaces, records with
    # user and team owners and tags, links into one record, and a long history.
    for n in range(5):
        MembershipFactory(
            user=owner, space=SpaceFactory(slug=f"area-{n}"), role=Membership.Role.VIEWER
        )
    team = TeamFactory()
    records = [
        make_record(
            space=space,
            actor=owner,
            owner_user=owner if n % 2 else None,
            owner_team=None if n % 2 else team,
            tags=["a", "b"],
            anchors=["src/**"],
        )
        for n in range(24)
    ]
    hub = records[0]
    for other in records[1:13]:
        services.record_link(source=other, target=hub, type="depends_on", actor=owner)
    for n in range(10):
        services.record_update(
            record=hub, actor=teammate, expected_version=hub.version, changes={"body": f"v{n}"}
        )
        hub.refresh_from_db()
    return hub


def _count(api, path, token):
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(path, **bearer(token))
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), len(response.json()["results"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/records/?page_size={n}",
        "/api/v1/records/?fields=brief&page_size={n}",
        "/api/v1/records/?q=record&page_size={n}",
        "/api/v1/records/?anchor=src/x.py&tag=a&owner=owner&page_size={n}",
        "/api/v1/records/{hub}/links/?page_size={n}",
        "/api/v1/records/{hub}/revisions/?page_size={n}",
        "/api/v1/links/?page_size={n}",
        "/api/v1/spaces/?page_size={n}",
    ],
)
def test_list_query_count_does_not_grow_with_page_size(
    api, many, read_token, path, django_assert_max_num_queries
):
    small = path.format(n=2, hub=many.pk)
    large = path.format(n=100, hub=many.pk)
    api.get(small, **bearer(read_token))  # token "last used" stamp written once, not per call
    small_queries, small_rows = _count(api, small, read_token)
    large_queries, large_rows = _count(api, large, read_token)
    assert (small_rows, large_rows > small_rows) == (2, True)
    assert small_queries == large_queries
    with django_assert_max_num_queries(8):
        api.get(large, **bearer(read_token))


def test_me_runs_the_same_queries_for_one_space_or_many(api, space, owner, read_token):
    api.get("/api/v1/me/", **bearer(read_token))
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/v1/me/", **bearer(read_token)).json()["spaces"]) == 1
    for n in range(6):
        MembershipFactory(user=owner, space=SpaceFactory(slug=f"team-{n}"))
    with CaptureQueriesContext(connection) as seven:
        assert len(api.get("/api/v1/me/", **bearer(read_token)).json()["spaces"]) == 7
    assert len(one.captured_queries) == len(seven.captured_queries)

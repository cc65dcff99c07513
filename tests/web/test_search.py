"""Searching a space in the browser: the context API's engine, everyday phrasing, relevance by
default (also from the box), matched words marked, bounded queries."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.records import services
from apps.retrieval import services as retrieval_services
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

HOME = reverse("web:space_home", kwargs={"slug": "payments"})


def _keys(response) -> list[str]:
    """Record keys in the order the table lists them."""
    return re.findall(r'<td class="key"><a [^>]*>([A-Z]{3}-\d+)</a>', response.content.decode())


@pytest.fixture
def payments(space, owner):
    def add(title, **fields):
        fields.setdefault("status", "accepted")
        return make_record(space=space, actor=owner, title=title, **fields)

    records = {
        "all": add(
            "Retry failed payments with exponential backoff",
            summary="Card payments that fail are retried three times.",
        ),
        "two": add("Failed webhook deliveries are retried hourly", summary="Hourly retries."),
        "one": add("Payments are settled nightly", summary="Settlement runs at 02:00."),
        "none": add("Use PostgreSQL for the ledger", summary="One database."),
        # Newest, so a date order would put it first.
        "newest": add("Payment provider contract", summary="Which provider we use."),
    }
    retrieval_services.embed_records(record_ids=[r.pk for r in records.values()])
    return records


def test_everyday_phrasing_finds_records_with_all_the_words_first(as_user, owner, payments):
    response = as_user(owner).get(HOME, {"q": "how do we retry failed payments"})

    keys = _keys(response)
    # Not every word is required; the record with all of them comes first, then one with two of
    # them. (One that shares a single word, "Payments are settled nightly", falls under the
    # engine's relevance floor, as it does for the context API.)
    assert keys[0] == payments["all"].key
    assert keys[1] == payments["two"].key
    assert payments["none"].key not in keys


def test_a_search_from_the_box_is_ranked_by_relevance_not_by_date(as_user, owner, payments):
    client = as_user(owner)
    # The page before the search is in date order, and its sort menu sends the default order
    # (not "recently updated"), so the search typed into the box is ranked by relevance.
    before = client.get(HOME).content.decode()
    assert '<option value="" selected>Recently updated</option>' in before
    assert _keys(client.get(HOME))[0] == payments["newest"].key

    # What the form sends when Enter is pressed in the box: every field, sort empty.
    form = {"q": "failed payments retried", "kind": "", "status": "", "owner": "", "sort": ""}
    response = client.get(HOME, form)

    assert _keys(response)[0] == payments["all"].key
    assert '<option value="" selected>Best match</option>' in response.content.decode()
    # An order picked explicitly still applies to the records found.
    by_title = _keys(client.get(HOME, {**form, "sort": "title"}))
    assert by_title == sorted(
        by_title, key=lambda k: next(r.title for r in payments.values() if r.key == k)
    )


def test_the_web_lists_records_in_the_context_apis_order(as_user, owner, space, payments):
    _, plain = make_token(owner, spaces=[space])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    for query in ("retry failed payments", "payment provider", "nightly settlement"):
        items = api.get(
            "/api/v1/context/", {"q": query, "max_tokens": 20000, "space": "payments"}
        ).json()["items"]
        from_api = [i["key"] for i in items]
        by_words = [i["key"] for i in items if "full-text match" in i["why"]]
        from_web = _keys(as_user(owner).get(HOME, {"q": query}))
        # The web lists the API's records in the same order: every record the API found by its
        # words, and records found by likeness only when they are strong matches.
        assert from_web == [k for k in from_api if k in from_web], query
        assert set(by_words) <= set(from_web), query
        assert from_web[0] == from_api[0], query


def test_matched_words_are_marked_in_titles_and_excerpts_and_text_stays_escaped(
    as_user, owner, space
):
    titled = make_record(
        space=space,
        actor=owner,
        title="<b>Retries</b> of failed payments",
        summary="Nothing about it here.",
    )
    in_body = make_record(
        space=space,
        actor=owner,
        title="Card network rules",
        summary="What the schemes require.",
        body="## Context\nA long story.\n\nThe payment is retried with <script>x</script> backoff.",
    )

    body = as_user(owner).get(HOME, {"q": "retry payment"}).content.decode()

    rows = dict(
        re.findall(r'<td class="key"><a [^>]*>([A-Z]{3}-\d+)</a></td>(.*?)</tr>', body, re.S)
    )
    title = re.search(r'class="row-title">(.*?)</a>', rows[titled.key]).group(1)
    assert title == "&lt;b&gt;<mark>Retries</mark>&lt;/b&gt; of failed <mark>payments</mark>"
    # The title shows the match: the summary is shown as written.
    assert '<span class="row-summary">Nothing about it here.</span>' in rows[titled.key]
    # Neither title nor summary matches: the part of the body that does is shown, marked, as
    # plain text (no markdown heading marks).
    excerpt = re.search(r'class="row-summary">(.*?)</span>', rows[in_body.key], re.S).group(1)
    assert excerpt.startswith(
        "Context A long story. The <mark>payment</mark> is <mark>retried</mark>"
    )
    assert "<script>" not in excerpt and "<script>" not in body.split("<main", 1)[1]


def test_search_runs_a_bounded_number_of_queries(
    as_user, owner, space, django_assert_max_num_queries
):
    for n in range(40):
        make_record(
            space=space, actor=owner, title=f"Retry rule {n} for payments", owner_user=owner
        )
    client = as_user(owner)
    with django_assert_max_num_queries(16):
        response = client.get(HOME, {"q": "how do we retry failed payments"})
    assert len(_keys(response)) == 40


def test_the_archive_is_searched_with_any_of_the_words(as_user, owner, space):
    gone = make_record(space=space, actor=owner, title="Retry payments from cron")
    services.record_archive(record=gone, actor=owner)

    response = as_user(owner).get(HOME, {"q": "how do we retry failed payments", "archived": "1"})

    assert _keys(response) == [gone.key]
    assert "<mark>Retry</mark> <mark>payments</mark>" in response.content.decode()


def test_the_results_heading_takes_focus_after_a_search(as_user, owner, payments):
    client = as_user(owner)
    found = client.get(HOME, {"q": "retry"}).content.decode()
    assert re.search(
        r'<h2 class="result-bar" id="results" tabindex="-1" data-focus-on-load>', found
    )
    nothing = client.get(HOME, {"q": "zebra crossing"}).content.decode()
    assert '<h2 id="results" tabindex="-1" data-focus-on-load>No records match</h2>' in nothing
    assert "data-focus-on-load" not in client.get(HOME).content.decode()


@pytest.mark.parametrize(
    "query",
    ["how do we", "-", '"', "!!! & | :* <->", "x" * 300, "retry \x00 payments", "DEC-1 OR"],
)
def test_odd_searches_get_a_page_not_an_error(as_user, owner, payments, query):
    response = as_user(owner).get(HOME, {"q": query})
    assert response.status_code == 200
    assert 'id="results"' in response.content.decode()


SEARCH = reverse("web:search")


def test_searching_every_space_uses_the_same_engine_and_shows_only_visible_spaces(
    as_user, owner, space, payments, outsider, other_space
):
    from apps.accounts.models import Membership
    from tests.factories import MembershipFactory, SpaceFactory

    ops = SpaceFactory(name="Operations", slug="ops")
    MembershipFactory(space=ops, user=owner, role=Membership.Role.EDITOR)
    there = make_record(
        space=ops, actor=owner, kind="constraint", title="Retry failed deployments twice"
    )
    hidden = make_record(space=other_space, actor=outsider, title="Retry failed payments, secret")
    client = as_user(owner)

    page = client.get(SEARCH, {"q": "how do we retry failed payments"})
    body = page.content.decode()

    keys = _keys(page)
    assert keys[0] == payments["all"].key  # all the words, first
    assert there.key in keys and payments["one"].key in keys
    assert "secret" not in body and f"/s/elsewhere/{hidden.key}/" not in body
    assert f'href="/s/ops/{there.key}/"' in body
    assert "<mark>Retry</mark> <mark>failed</mark> <mark>payments</mark>" in body
    assert "data-focus-on-load><strong>" in body
    # The same order as a search of the space itself, for the records of that space.
    in_space = _keys(client.get(HOME, {"q": "how do we retry failed payments"}))
    assert [k for k in keys if k in in_space] == in_space
    # The navigation links to it; an empty search is just the box.
    assert f'href="{SEARCH}"' in body
    empty = client.get(SEARCH).content.decode()
    assert "No records match" not in empty and 'id="s-q"' in empty
    nothing = client.get(SEARCH, {"q": "zebras and giraffes"}).content.decode()
    assert "No records match" in nothing


def test_searching_every_space_runs_a_bounded_number_of_queries(
    as_user, owner, space, django_assert_max_num_queries
):
    for n in range(40):
        make_record(
            space=space, actor=owner, title=f"Retry rule {n} for payments", owner_user=owner
        )
    client = as_user(owner)
    with django_assert_max_num_queries(10):
        response = client.get(SEARCH, {"q": "how do we retry failed payments"})
    assert len(_keys(response)) == 40

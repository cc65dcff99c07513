"""Pages of the web UI, seen by the owner, a teammate, a viewer and an outsider."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.records import services
from apps.records.models import Record
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed."""
    import re
    from html import unescape

    return " ".join(unescape(re.sub(r"<[^>]+>", "", response.content.decode())).split())


def _url(name, record=None, **kwargs):
    if record is not None:
        kwargs.update(slug=record.space.slug, key=record.key)
    return reverse(f"web:{name}", kwargs=kwargs)


def test_pages_need_a_session(client, decision):
    for url in ("/", _url("space_home", slug="payments"), _url("record_detail", decision)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_login_page_and_logout_work(client, owner):
    page = client.get("/accounts/login/")
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post(
        "/accounts/login/", {"username": "owner", "password": "pw-for-tests-1"}, follow=True
    )
    assert response.wsgi_request.user == owner
    assert b"Payments" in response.content
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_password_change_checks_the_old_password(as_user, owner):
    client = as_user(owner)
    bad = client.post(
        reverse("web:password_change"),
        {"old_password": "wrong", "new_password1": "x9-long-pass", "new_password2": "x9-long-pass"},
    )
    assert bad.status_code == 200
    assert "incorrect" in bad.content.decode()
    good = client.post(
        reverse("web:password_change"),
        {
            "old_password": "pw-for-tests-1",
            "new_password1": "x9-long-pass-ok",
            "new_password2": "x9-long-pass-ok",
        },
    )
    assert good.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("x9-long-pass-ok")


def test_space_list_shows_only_my_spaces(as_user, owner, outsider, space, other_space):
    body = as_user(owner).get("/").content.decode()
    assert "Payments" in body and "Elsewhere" not in body


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_members_see_the_record_page(request, as_user, linked, who):
    user = request.getfixturevalue(who)
    response = as_user(user).get(_url("record_detail", linked))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Use PostgreSQL for the ledger" in body
    assert "<strong>PostgreSQL</strong>" in body  # rendered markdown
    assert "services/ledger/**" in body and "ledger" in body
    assert "constrained by" in body.lower()  # incoming link from the constraint


def test_outsider_gets_404_for_everything_in_the_space(as_user, outsider, decision):
    client = as_user(outsider)
    gets = [
        _url("space_home", slug="payments"),
        _url("space_members", slug="payments"),
        _url("record_create", slug="payments"),
        _url("record_detail", decision),
        _url("record_edit", decision),
        _url("record_history", decision),
        _url("record_graph", decision),
        _url("record_supersede", decision),
        _url("revision_detail", decision, number=1),
        _url("link_search", decision) + "?q=ledger",
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [
        _url("record_verify", decision),
        _url("record_archive", decision),
        _url("link_add", decision),
        _url("revision_restore", decision, number=1),
    ]
    for url in posts:
        assert client.post(url, {"outcome": "still_true"}).status_code == 404, url
    decision.refresh_from_db()
    assert decision.version == 1 and decision.archived_at is None
    assert not decision.verifications.exists()


def test_404_page_uses_the_site_layout_and_names_nothing(as_user, outsider, decision):
    response = as_user(outsider).get(_url("record_detail", decision))
    body = response.content.decode()
    assert "Nothing here" in body and 'class="topbar"' in body
    assert "Use PostgreSQL" not in body and "Payments" not in body
    assert 'class="spacenav"' not in body


def test_viewer_cannot_edit_and_sees_a_403_page(as_user, viewer, decision):
    client = as_user(viewer)
    page = client.get(_url("record_detail", decision)).content.decode()
    assert "Edit</a>" not in page and "Still true" not in page
    response = client.get(_url("record_edit", decision))
    assert response.status_code == 403
    assert "You can’t do that here" in response.content.decode()
    assert 'class="topbar"' in response.content.decode()
    assert client.get(_url("record_create", slug="payments")).status_code == 403
    post = client.post(
        _url("record_edit", decision), {"title": "Hijacked", "status": "draft", "version": 1}
    )
    assert post.status_code == 403
    assert client.post(_url("record_archive", decision)).status_code == 403
    decision.refresh_from_db()
    assert decision.title == "Use PostgreSQL for the ledger" and decision.archived_at is None


def test_space_home_filters_search_and_sorts(as_user, owner, teammate, space, decision, constraint):
    make_record(space=space, actor=owner, kind="intent", title="Fast payouts", tags=["payouts"])
    client = as_user(owner)
    home = _url("space_home", slug="payments")

    def keys(query):
        body = client.get(home + query).content.decode()
        found = [k for k in ("DEC-1", "CON-1", "INT-1") if f">{k}</a>" in body]
        return sorted(found, key=lambda k: body.index(f">{k}</a>"))

    assert keys("") == ["INT-1", "CON-1", "DEC-1"]  # newest first
    assert keys("?kind=constraint") == ["CON-1"]
    assert keys("?tag=payouts") == ["INT-1"]
    assert keys("?status=accepted&sort=key") == ["CON-1", "DEC-1"]
    assert keys("?q=serialisable") == ["DEC-1"]  # summary text, stemmed
    assert keys("?q=DEC-1") == ["DEC-1"]
    assert keys("?anchor=services/ledger/entries.py") == ["DEC-1"]
    assert keys("?anchor=services/payouts/api.py") == ["CON-1"]
    assert keys(f"?owner=u:{owner.pk}") == ["CON-1", "DEC-1"]
    assert keys("?owner=none") == ["INT-1"]
    assert keys("?sort=-title") == ["DEC-1", "CON-1", "INT-1"]
    assert keys("?freshness=stale") == []
    # Freshness is derived from the facts (here: a passed valid-until date and a passed review
    # date), whether or not the sweep has run since.
    Record.objects.filter(pk=constraint.pk).update(valid_until=dt.date(2000, 1, 1))
    Record.objects.filter(pk=decision.pk).update(next_review_at=timezone.now() - dt.timedelta(1))
    assert keys("?freshness=attention&sort=key") == ["CON-1", "DEC-1"]
    # Nonsense in the query string is ignored, not an error.
    assert client.get(home + "?kind=opinion&sort=drop+table&page=abc").status_code == 200


def test_space_home_shows_empty_states(as_user, owner, space):
    client = as_user(owner)
    body = client.get(_url("space_home", slug="payments")).content.decode()
    assert "No records yet" in body and "Write the first decision" in body
    body = client.get(_url("space_home", slug="payments") + "?q=nothing").content.decode()
    assert "No records match" in body


def test_space_home_paginates(as_user, owner, space):
    for n in range(53):
        make_record(space=space, actor=owner, title=f"Decision number {n}")
    client = as_user(owner)
    first = client.get(_url("space_home", slug="payments") + "?sort=key").content.decode()
    assert "Page 1 of 2" in first and ">DEC-50<" in first and ">DEC-51<" not in first
    second = client.get(_url("space_home", slug="payments") + "?sort=key&page=2").content.decode()
    assert ">DEC-51<" in second and ">DEC-53<" in second


def test_space_home_query_count_does_not_grow_with_records(
    as_user, owner, space, django_assert_max_num_queries
):
    for n in range(30):
        make_record(space=space, actor=owner, title=f"Record {n}", owner_user=owner)
    client = as_user(owner)
    with django_assert_max_num_queries(20):
        assert client.get(_url("space_home", slug="payments")).status_code == 200


def test_archive_and_unarchive(as_user, owner, decision):
    client = as_user(owner)
    client.post(_url("record_archive", decision))
    decision.refresh_from_db()
    assert decision.archived_at is not None
    home = client.get(_url("space_home", slug="payments")).content.decode()
    assert ">DEC-1<" not in home
    archived = client.get(_url("space_home", slug="payments") + "?archived=1").content.decode()
    assert ">DEC-1<" in archived
    assert "Archived" in client.get(_url("record_detail", decision)).content.decode()
    client.post(_url("record_archive", decision), {"action": "unarchive"})
    decision.refresh_from_db()
    assert decision.archived_at is None


def test_graph_shows_two_hops_and_links_nodes(as_user, owner, space, linked, constraint):
    far = make_record(space=space, actor=owner, kind="guardrail", title="Far away")
    services.record_link(source=far, target=constraint, type="relates_to", actor=owner)
    farther = make_record(space=space, actor=owner, title="Three hops out")
    services.record_link(source=farther, target=far, type="relates_to", actor=owner)
    body = as_user(owner).get(_url("record_graph", linked)).content.decode()
    assert "<svg" in body
    for record in (linked, constraint, far):
        assert f'href="/s/payments/{record.key}/"' in body
    assert f"/s/payments/{farther.key}/" not in body


def test_nav_lists_only_pages_that_exist(as_user, owner, space):
    from apps.web.context_processors import navigation

    request = as_user(owner).get(_url("space_home", slug="payments")).wsgi_request
    nav = navigation(request)
    labels = [item["label"] for item in nav["space_nav"]]
    assert labels[0] == "Records" and "Members" in labels
    assert nav["nav_space"] == space
    assert all(item["url"].startswith("/") for item in nav["nav_items"] + nav["user_nav"])


def test_no_inline_scripts_handlers_or_styles_in_pages(as_user, owner, linked):
    import re

    client = as_user(owner)
    for url in (
        "/",
        _url("space_home", slug="payments"),
        _url("record_detail", linked),
        _url("record_edit", linked),
        _url("record_history", linked),
        _url("record_graph", linked),
        _url("space_members", slug="payments"),
    ):
        body = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", body), url
        assert not re.search(r"\son[a-z]+=", body), url
        assert not re.search(r"\sstyle=", body), url


def test_successor_banner_on_superseded_record(as_user, owner, space, decision):
    new = make_record(space=space, actor=owner, title="Use CockroachDB")
    services.record_supersede(old=decision, new=new, actor=owner)
    body = as_user(owner).get(_url("record_detail", decision)).content.decode()
    assert "banner-superseded" in body
    assert f'href="/s/payments/{new.key}/"' in body and "Use CockroachDB" in body
    assert Record.objects.get(pk=decision.pk).status == "superseded"


def test_record_page_query_count_does_not_grow_with_links(as_user, owner, space, decision):
    client = as_user(owner)
    url = _url("record_detail", decision)

    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    # One link first: linked records bring a constant visibility check (whether the reader
    # may see them), which must not grow with their number.
    first = make_record(space=space, actor=owner, kind="constraint", title="Rule")
    services.record_link(source=decision, target=first, type="relates_to", actor=owner)
    before = count_queries()
    for n in range(8):
        other = make_record(space=space, actor=owner, kind="constraint", title=f"Rule {n}")
        services.record_link(source=other, target=decision, type="constrains", actor=owner)
        services.record_link(source=decision, target=other, type="relates_to", actor=owner)
    assert count_queries() <= before + 2


@pytest.mark.parametrize(
    "query",
    [
        "?q=%00",
        "?q=%27%3B+drop+table+x%3B--",
        "?q=%22unbalanced&sort=-verified",
        "?anchor=%00",
        "?anchor=[a-z",
        "?tag=%00&owner=u:%00",
        "?owner=u:99999999999999999999&page=99999",
        "?freshness=attention&archived=1&sort=owner",
    ],
)
def test_hostile_query_strings_never_break_the_space_home(as_user, owner, decision, query):
    response = as_user(owner).get(_url("space_home", slug="payments") + query)
    assert response.status_code == 200


def test_hostile_urls_are_404_not_errors(as_user, owner, decision):
    client = as_user(owner)
    for url in (
        "/s/payments/DEC-999999999/",
        "/s/payments/DEC-1/history/99999999999/",
        "/s/payments/DEC-1/history/?a=99999999999999&b=abc",
        "/s/payments/DEC-1/links/search/?q=%00",
        "/s/no-such-space/",
    ):
        assert client.get(url).status_code in (200, 404), url


def test_record_page_shows_how_often_ai_tools_fetched_it_in_the_last_30_days(
    as_user, owner, decision
):
    import datetime as dt

    from django.utils import timezone

    from apps.retrieval.models import ContextRequest, ContextResult

    def fetched(tool, days_ago):
        when = timezone.now() - dt.timedelta(days=days_ago)
        request = ContextRequest.objects.create(
            channel="api", operation="context", tool=tool, latency_ms=5, created_at=when
        )
        ContextResult.objects.create(
            request=request, record=decision, rank=1, score=0.9, created_at=when, tool=tool
        )

    fetched("claude-code", 1)
    fetched("claude-code", 2)
    fetched("cursor", 3)
    fetched("cursor", 45)  # last month: not counted
    page = as_user(owner).get(f"/s/{decision.space.slug}/{decision.key}/")
    assert "Fetched 3 times in the last 30 days by 2 tools" in page.content.decode()


def test_stale_record_says_when_its_review_was_due(as_user, owner, viewer, decision):
    import datetime as dt

    from django.utils import timezone

    due = timezone.now() - dt.timedelta(days=40)
    Record.objects.filter(pk=decision.pk).update(freshness="stale", next_review_at=due)
    body = _text(as_user(owner).get(_url("record_detail", decision)))
    assert "Past its review date" in body
    assert (
        f"Its review was due on {due:%-d %b %Y} (1 month ago); it has never been verified." in body
    )
    assert "Check it, then mark it “Still true” or edit it." in body
    # A viewer is told who can confirm it instead.
    seen = _text(as_user(viewer).get(_url("record_detail", decision)))
    assert f"{owner.display_name} (the owner) or a space admin can confirm it." in seen


def test_due_record_says_its_review_is_coming_up(as_user, owner, decision):
    import datetime as dt

    from django.utils import timezone

    due = timezone.now() + dt.timedelta(days=5, hours=1)
    Record.objects.filter(pk=decision.pk).update(freshness="due", next_review_at=due)
    body = as_user(owner).get(_url("record_detail", decision)).content.decode()
    assert "Review coming up" in body and "(in 5 days)" in body
    assert "Past its review date" not in body


def test_fresh_record_has_no_freshness_warning(as_user, owner, decision):
    body = as_user(owner).get(_url("record_detail", decision)).content.decode()
    for heading in ("Past its review date", "Review coming up", "Why this may be wrong"):
        assert heading not in body
    assert "Not fetched in the last 30 days" in body


def test_sorting_by_freshness_puts_the_worst_first(as_user, owner, space):
    now = timezone.now()
    states = {
        "Fresh one": {},
        "Due one": {"next_review_at": now + dt.timedelta(days=3)},
        "Stale one": {"next_review_at": now - dt.timedelta(days=3)},
        "Suspect one": {"valid_until": dt.date(2000, 1, 1)},
    }
    for title, facts in states.items():
        record = make_record(space=space, actor=owner, title=title)
        Record.objects.filter(pk=record.pk).update(**facts)
    client = as_user(owner)
    body = client.get(_url("space_home", slug="payments") + "?sort=freshness").content.decode()
    table = body[body.index("<tbody>") :]
    assert sorted(states, key=table.index) == ["Suspect one", "Stale one", "Due one", "Fresh one"]
    # The sort menu (the only way to sort on a phone, where the headers are hidden) shows it.
    assert '<option value="freshness" selected>Freshness (worst first)</option>' in body
    body = client.get(_url("space_home", slug="payments") + "?sort=-freshness").content.decode()
    table = body[body.index("<tbody>") :]
    assert sorted(states, key=table.index) == ["Fresh one", "Due one", "Stale one", "Suspect one"]


def test_space_home_says_how_many_records_match(as_user, owner, space):
    for n in range(3):
        make_record(space=space, actor=owner, title=f"Ledger rule {n}")
    make_record(space=space, actor=owner, title="Something else")
    body = as_user(owner).get(_url("space_home", slug="payments") + "?q=ledger").content.decode()
    assert "<strong>3</strong> records matching “ledger”" in body
    # With a search, "Best match" is the default order and is offered in the sort menu.
    assert '<option value="" selected>Best match</option>' in body


def test_history_shows_labels_not_stored_codes(as_user, owner, space, decision, constraint):
    services.record_update(
        record=decision,
        actor=owner,
        expected_version=1,
        changes={"reversibility": "one_way", "status": "deprecated"},
    )
    services.record_link(source=decision, target=constraint, type="depends_on", actor=owner)
    body = as_user(owner).get(_url("record_history", decision) + "?a=1").content.decode()
    assert '<span class="d-add">+One-way door</span>' in body
    assert '<span class="d-del">-Accepted</span><span class="d-add">+Deprecated</span>' in body
    assert '<span class="d-add">+depends on CON-1</span>' in body
    # One line of the diff is one line on screen: no whitespace between the line spans.
    assert "</span>\n<span" not in body
    # The revision list names each change once ("Created", not "Created Created").
    assert body.count(">Created</span> Created") == 0


def test_revision_page_links_to_neighbours_and_compares_with_the_newest(as_user, owner, decision):
    for version, title in ((1, "Second title"), (2, "Third title")):
        services.record_update(
            record=decision, actor=owner, expected_version=version, changes={"title": title}
        )
    client = as_user(owner)
    body = client.get(_url("revision_detail", decision, number=2)).content.decode()
    history = _url("record_history", decision)
    assert f'href="{_url("revision_detail", decision, number=1)}" rel="prev"' in body
    assert f'href="{_url("revision_detail", decision, number=3)}" rel="next"' in body
    assert f'href="{history}?a=1&amp;b=2"' in body  # what changed in r2
    assert f'href="{history}?a=2&amp;b=3"' in body  # compare with the newest
    assert "Restore this revision" in body and "Second title" in body
    newest = client.get(_url("revision_detail", decision, number=3)).content.decode()
    assert "This is the newest revision." in newest
    assert "Restore this revision" not in newest and 'rel="next"' not in newest


def test_graph_edges_bend_around_records_in_their_way(owner, space):
    """A — B — C in a row, plus a link A → C: the A → C edge must not run through B."""
    from apps.web.graph import NODE_H, NODE_W, _bezier, neighbourhood

    a = make_record(space=space, actor=owner, title="A")
    b = make_record(space=space, actor=owner, title="B")
    c = make_record(space=space, actor=owner, title="C")
    services.record_link(source=a, target=b, type="depends_on", actor=owner)
    services.record_link(source=b, target=c, type="depends_on", actor=owner)
    services.record_link(source=c, target=a, type="relates_to", actor=owner)
    graph = neighbourhood(principal=owner, record=b)
    by_key = {n.record.key: n for n in graph.nodes}
    for edge in graph.edges:
        # Path: "Mx,y Qcx,cy ex,ey"
        numbers = [
            float(v) for v in edge.path.replace("M", "").replace("Q", " ").replace(",", " ").split()
        ]
        p0, p1, p2 = numbers[0:2], numbers[2:4], numbers[4:6]
        for node in by_key.values():
            if node in (edge.source, edge.target):
                continue
            for step in range(1, 20):
                x, y = _bezier(p0, p1, p2, step / 20)
                inside = abs(x - node.x) < NODE_W / 2 and abs(y - node.y) < NODE_H / 2
                assert not inside, (edge.label, node.record.key)


def test_graph_list_links_every_record(as_user, owner, space, linked, constraint):
    body = as_user(owner).get(_url("record_graph", linked)).content.decode()
    listing = body[body.index('class="graph-list"') :]
    assert f'href="/s/payments/{constraint.key}/"' in listing
    assert f'href="/s/payments/{linked.key}/"' in listing


def test_server_error_page_keeps_the_site_look(rf):
    from apps.core.views import server_error

    response = server_error(rf.get("/s/payments/", HTTP_ACCEPT="text/html"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body and 'class="topbar"' in body


def test_record_page_query_count_does_not_grow_with_suspect_reasons(
    as_user, owner, space, decision
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def lean_on_a_changing_record(n):
        other = make_record(space=space, actor=owner, kind="intent", title=f"Intent {n}")
        services.record_link(source=decision, target=other, type="depends_on", actor=owner)
        services.record_update(
            record=other, actor=owner, expected_version=1, changes={"summary": "changed"}
        )

    client = as_user(owner)
    url = _url("record_detail", decision)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(url).content.decode()
        return len(ctx.captured_queries), body

    lean_on_a_changing_record(0)
    one, body = count()
    assert "Why this may be wrong" in body and "Intent 0" in body
    for n in range(1, 6):
        lean_on_a_changing_record(n)
    six, body = count()
    assert all(f"Intent {n}" in body for n in range(6))
    assert six <= one + 1


def test_graph_boxes_never_overlap_in_a_crowded_neighbourhood(owner, space):
    from apps.web.graph import NODE_H, NODE_W, neighbourhood

    hub = make_record(space=space, actor=owner, title="Hub")
    first = [make_record(space=space, actor=owner, title=f"Near {n}") for n in range(12)]
    for n, record in enumerate(first):
        services.record_link(source=hub, target=record, type="relates_to", actor=owner)
        for m in range(2):
            far = make_record(space=space, actor=owner, title=f"Far {n}.{m}")
            services.record_link(source=record, target=far, type="depends_on", actor=owner)
    graph = neighbourhood(principal=owner, record=hub)
    assert len(graph.nodes) == 37
    boxes = [(n.x, n.y, n.record.key) for n in graph.nodes]
    for i, (x1, y1, k1) in enumerate(boxes):
        assert NODE_W / 2 <= x1 <= graph.width - NODE_W / 2, k1  # inside the canvas
        assert NODE_H / 2 <= y1 <= graph.height - NODE_H / 2, k1
        for x2, y2, k2 in boxes[i + 1 :]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H, (k1, k2)


def _verifications(response) -> str:
    import re

    html = response.content.decode()
    section = re.search(r"<h2[^>]*>Verifications</h2>(.*?)</section>", html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", section).split())


def test_owner_edits_are_one_line_in_the_verifications_not_one_still_true_each(
    as_user, owner, decision
):
    for summary in ("First", "Second", "Third"):
        decision = services.record_update(
            record=decision,
            actor=owner,
            expected_version=decision.version,
            changes={"summary": summary},
        )
    services.record_verify(record=decision, actor=owner)
    shown = _verifications(as_user(owner).get(_url("record_detail", decision)))
    # One explicit "Still true", at the revision it confirmed, and one line for the three edits.
    assert shown.count("Still true") == 1
    assert shown.count("Edited by its owner") == 1
    assert "r2–r4 (3 edits)" in shown
    assert "r4" in shown.split("Still true")[1].split("Edited")[0]


def test_revisions_are_numbered_one_way_on_every_record_page(as_user, owner, decision, constraint):
    import re

    # A link adds a revision without a new version: r3 is still version 2.
    decision = services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"title": "Ledger in PG"}
    )
    services.record_link(source=decision, target=constraint, type="depends_on", actor=owner)
    assert (decision.version, decision.revisions.count()) == (2, 3)
    client = as_user(owner)
    detail = _text(client.get(_url("record_detail", decision)))
    assert re.search(r"Revision\s*r3", detail) and "Version" not in detail
    services.record_verify(record=decision, actor=owner)
    assert "· r3" in _verifications(client.get(_url("record_detail", decision)))
    edit = _text(client.get(_url("record_edit", decision)))
    assert "Editing r3" in edit and not re.search(r"(?i)version \d", edit)
    history = client.get(_url("record_history", decision)).content.decode()
    assert " · v2" not in history and " · v1" not in history
    # The conflict page too: an edit started from r1 meets r3.
    conflict = client.post(
        _url("record_edit", decision),
        {"title": "Mine", "status": decision.status, "version": 1, "body": decision.body},
    )
    assert conflict.status_code == 409
    text = _text(conflict)
    assert "You started from r1; it is now at r3" in text
    assert "Start again from r3" in text and not re.search(r"(?i)version \d", text)

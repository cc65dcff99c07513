"""Writing through the web UI: create, edit with conflicts, links, supersede, history, verify,
members. Bad input gets messages next to fields and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import Membership, Space
from apps.records import services
from apps.records.models import Link, Record, Revision, Verification
from tests.factories import UserFactory, make_record

pytestmark = pytest.mark.django_db

HOSTILE = (
    "<script>alert('x')</script>\n\n"
    '<img src="x" onerror="alert(1)">\n\n'
    "[click me](javascript:alert(1))\n\n"
    '<a href="javascript:alert(2)" onclick="alert(3)">raw</a>\n\n'
    '<iframe src="https://evil.example"></iframe>\n\n'
    "**still bold**"
)


def _url(name, record=None, **kwargs):
    if record is not None:
        kwargs.update(slug=record.space.slug, key=record.key)
    return reverse(f"web:{name}", kwargs=kwargs)


def _form(record, **overrides):
    data = {
        "title": record.title,
        "summary": record.summary,
        "body": record.body,
        "status": record.status,
        "owner": f"u:{record.owner_user_id}" if record.owner_user_id else "",
        "tags": ", ".join(record.tags),
        "anchors": "\n".join(record.anchors),
        "version": record.version,
    }
    data.update(overrides)
    return data


def _assert_inert(html: str):
    lowered = html.lower()
    assert "<script" not in lowered
    assert "onerror" not in lowered and "onclick" not in lowered
    assert "javascript:" not in lowered
    assert "<iframe" not in lowered
    assert "<strong>still bold</strong>" in html


def test_create_form_starts_from_the_kind_template(as_user, owner, space):
    client = as_user(owner)
    for kind, heading in [
        ("decision", "## Consequences"),
        ("constraint", "## How to check"),
        ("intent", "## Non-goals"),
        ("guardrail", "## Escalate to"),
    ]:
        body = client.get(_url("record_create", slug="payments") + f"?kind={kind}").content.decode()
        assert heading in body, kind
    # Decision-only fields appear only for decisions.
    assert (
        'name="reversibility"'
        not in client.get(
            _url("record_create", slug="payments") + "?kind=guardrail"
        ).content.decode()
    )


def test_create_a_decision(as_user, owner, space):
    response = as_user(owner).post(
        _url("record_create", slug="payments"),
        {
            "kind": "decision",
            "title": "  Use Kafka for events ",
            "summary": "Events go through Kafka.",
            "body": "## Decision\nKafka.",
            "status": "proposed",
            "owner": f"u:{owner.pk}",
            "tags": "Events, kafka, events",
            "anchors": "services/events/**\n\nlibs/bus",
            "reversibility": "two_way",
            "impact": "medium",
            "decided_on": "2026-01-31",
            "deciders": "Platform",
        },
    )
    record = Record.objects.get(space=space, key="DEC-1")
    assert response.status_code == 302 and response["Location"] == "/s/payments/DEC-1/"
    assert record.title == "Use Kafka for events"
    assert record.tags == ["events", "kafka"]
    assert record.anchors == ["services/events/**", "libs/bus"]
    assert (record.reversibility, record.impact, str(record.decided_on)) == (
        "two_way",
        "medium",
        "2026-01-31",
    )
    assert record.owner_user == owner


def test_bad_input_shows_errors_next_to_fields_and_creates_nothing(as_user, owner, space):
    response = as_user(owner).post(
        _url("record_create", slug="payments") + "?kind=decision",
        {
            "kind": "decision",
            "title": "",
            "summary": "two\nlines",
            "status": "superseded",
            "owner": "u:999999",
            "decided_on": "31/01/2026",
            "tags": ", ".join(f"t{n}" for n in range(40)),
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"title", "summary", "status", "owner", "decided_on"}
    body = response.content.decode()
    assert 'class="errorlist"' in body and "Please fix the highlighted fields" in body
    assert not Record.objects.exists()


def test_service_validation_errors_land_on_their_fields(as_user, owner, space):
    response = as_user(owner).post(
        _url("record_create", slug="payments"),
        {
            "kind": "decision",
            "title": "Too many tags",
            "status": "draft",
            "tags": ", ".join(f"t{n}" for n in range(40)),
        },
    )
    assert response.status_code == 200
    assert "tags" in response.context["form"].errors
    assert not Record.objects.exists()


def test_hostile_markdown_renders_inert_on_page_and_in_preview(as_user, owner, space):
    record = make_record(space=space, actor=owner, title="Hostile", body=HOSTILE)
    client = as_user(owner)
    page = client.get(_url("record_detail", record)).content.decode()
    article = page[page.index('class="markdown"') : page.index('id="links"')]
    _assert_inert(article)
    preview = client.post(_url("preview"), {"body": HOSTILE}).content.decode()
    _assert_inert(preview)


def test_preview_needs_a_session_and_csrf(client, owner, decision):
    assert client.post(_url("preview"), {"body": "x"}).status_code == 302
    # From the editor (htmx), an ended session is said in the preview pane, not a login page.
    for response in (
        client.post(
            _url("preview"),
            {"body": "**bold**"},
            headers={"HX-Request": "true", "Referer": "http://testserver/s/payments/DEC-1/edit/"},
        ),
        client.get(_url("link_search", decision) + "?q=ledger", headers={"HX-Request": "true"}),
    ):
        body = response.content.decode()
        assert response.status_code == 200 and "Your session has ended" in body
        assert "<strong>" not in body and "Use PostgreSQL" not in body
    assert (
        "/accounts/login/?next=%2Fs%2Fpayments%2FDEC-1%2Fedit%2F"
        in client.post(
            _url("preview"),
            {"body": "x"},
            headers={"HX-Request": "true", "Referer": "http://testserver/s/payments/DEC-1/edit/"},
        ).content.decode()
    )
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    refused = strict.post(_url("preview"), {"body": "x"})
    assert refused.status_code == 403
    assert "That form had expired" in refused.content.decode()


def test_every_form_carries_a_csrf_token(as_user, owner, linked):
    client = as_user(owner)
    for url in (
        _url("record_detail", linked),
        _url("record_edit", linked),
        _url("record_history", linked),
        _url("space_members", slug="payments"),
        _url("space_create"),
        _url("record_create", slug="payments"),
    ):
        body = client.get(url).content.decode()
        assert body.count('method="post"') <= body.count("csrfmiddlewaretoken"), url


def test_edit_saves_and_bumps_the_version(as_user, teammate, decision):
    response = as_user(teammate).post(
        _url("record_edit", decision), _form(decision, title="Use PostgreSQL 18", message="Newer")
    )
    assert response.status_code == 302
    decision.refresh_from_db()
    assert (decision.title, decision.version) == ("Use PostgreSQL 18", 2)
    assert decision.revisions.first().message == "Newer"


def test_concurrent_edit_shows_conflict_page_and_overwrites_nothing(as_user, owner, decision):
    # Same tags typed differently: not reported as a difference.
    stale_form = _form(decision, title="My title", body="My body\nline two", tags="Ledger,database")
    services.record_update(
        record=decision,
        actor=owner,
        expected_version=1,
        changes={"body": "Their body"},
    )
    response = as_user(owner).post(_url("record_edit", decision), stale_form)
    assert response.status_code == 409
    body = response.content.decode()
    assert "Someone else saved DEC-1" in body
    assert "Their body" in body and "My body" in body
    assert "+My body" in body and "-Their body" in body  # the diff
    assert [row["name"] for row in response.context["rows"]] == ["title", "body"]
    decision.refresh_from_db()
    assert (decision.title, decision.body, decision.version) == (
        "Use PostgreSQL for the ledger",
        "Their body",
        2,
    )
    # Choosing "save my edit over version 2" is an explicit second step.
    rebase = response.context["rebase_form"]
    assert rebase.initial["version"] == 2


def test_edit_without_version_is_refused(as_user, owner, decision):
    data = _form(decision, title="No version")
    del data["version"]
    response = as_user(owner).post(_url("record_edit", decision), data)
    assert response.status_code == 200
    # The version is a hidden field, so the message is at the top of the form, not on a field.
    message = "This form lost track of the version you started from, so nothing was saved."
    assert message in response.context["form"].non_field_errors()[0]
    assert message in response.content.decode()
    decision.refresh_from_db()
    assert decision.title == "Use PostgreSQL for the ledger"


def test_link_picker_finds_records_and_adds_typed_links(as_user, owner, decision, constraint):
    client = as_user(owner)
    results = client.get(_url("link_search", decision) + "?q=minor units").content.decode()
    assert "CON-1" in results and "DEC-1</span>" not in results
    assert "CON-1" in client.get(_url("link_search", decision) + "?q=con").content.decode()
    client.post(_url("link_add", decision), {"type": "depends_on", "target": "CON-1"})
    link = Link.objects.get(source=decision, target=constraint)
    assert link.type == "depends_on"
    # Pressing Enter with an exact key in the search box works too.
    client.post(_url("link_add", decision), {"type": "relates_to", "q": "con-1"})
    assert Link.objects.filter(source=decision, target=constraint, type="relates_to").exists()
    page = client.get(_url("record_detail", decision)).content.decode()
    assert "DEC-1 depends on" in page and "DEC-1 relates to" in page
    # A duplicate is a Conflict: a message on the page, nothing added.
    response = client.post(
        _url("link_add", decision), {"type": "depends_on", "target": "CON-1"}, follow=True
    )
    assert "already depends on" in response.content.decode()
    assert Link.objects.filter(source=decision).count() == 2
    # Unknown targets and types change nothing.
    client.post(_url("link_add", decision), {"type": "depends_on", "target": "NOPE-9"})
    client.post(_url("link_add", decision), {"type": "eats", "target": "CON-1"})
    assert Link.objects.filter(source=decision).count() == 2
    client.post(_url("link_remove", decision, link_id=link.pk))
    assert not Link.objects.filter(pk=link.pk).exists()
    # "is constrained by" from the decision's page stores CON-1 constrains DEC-1.
    client.post(_url("link_add", decision), {"type": "inverse:constrains", "target": "CON-1"})
    assert Link.objects.filter(source=constraint, target=decision, type="constrains").exists()
    page = client.get(_url("record_detail", decision)).content.decode()
    assert "Constrained by" in page


def test_link_picker_never_offers_other_spaces(as_user, owner, outsider, other_space, decision):
    make_record(space=other_space, actor=outsider, title="Secret minor units plan")
    results = as_user(owner).get(_url("link_search", decision) + "?q=secret").content.decode()
    assert "Secret" not in results


def test_supersede_creates_successor_and_links_both(as_user, owner, space, decision):
    client = as_user(owner)
    form = client.get(_url("record_supersede", decision))
    assert "Use PostgreSQL for the ledger" in form.content.decode()  # starts as a copy
    response = client.post(
        _url("record_supersede", decision),
        _form(decision, title="Use PostgreSQL 18", status="proposed", version=""),
    )
    new = Record.objects.get(space=space, key="DEC-2")
    assert response["Location"] == "/s/payments/DEC-2/"
    assert Link.objects.filter(source=new, target=decision, type="supersedes").exists()
    decision.refresh_from_db()
    assert decision.status == "superseded"
    assert new.body == decision.body


def test_supersede_carries_over_the_links_you_keep(as_user, owner, space, decision, constraint):
    other = make_record(space=space, actor=owner, kind="intent", title="Fast payouts")
    keep = services.record_link(source=decision, target=constraint, type="depends_on", actor=owner)
    drop = services.record_link(source=decision, target=other, type="implements", actor=owner)
    client = as_user(owner)
    page = client.get(_url("record_supersede", decision)).content.decode()
    assert f'value="{keep.pk}" checked' in page and f'value="{drop.pk}" checked' in page
    client.post(
        _url("record_supersede", decision),
        {**_form(decision, title="Successor", status="proposed", version=""), "copy_link": keep.pk},
    )
    new = Record.objects.get(space=space, title="Successor")
    assert set(Link.objects.filter(source=new).values_list("type", "target__key")) == {
        ("supersedes", decision.key),
        ("depends_on", constraint.key),
    }


def test_supersede_with_bad_input_creates_nothing(as_user, owner, decision):
    response = as_user(owner).post(
        _url("record_supersede", decision), _form(decision, title="", version="")
    )
    assert response.status_code == 200 and "title" in response.context["form"].errors
    assert Record.objects.count() == 1
    decision.refresh_from_db()
    assert decision.status == "accepted"


def test_history_diffs_any_two_revisions_and_restores(as_user, owner, decision):
    services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"body": "Second body"}
    )
    services.record_update(
        record=decision, actor=owner, expected_version=2, changes={"title": "Third title"}
    )
    client = as_user(owner)
    unified = client.get(_url("record_history", decision) + "?a=1&b=3").content.decode()
    assert "r1 → r3" in unified and "+Second body" in unified and "-Ledgers must not" in unified
    split = client.get(_url("record_history", decision) + "?a=3&b=1&mode=split").content.decode()
    assert "diff-split" in split and "r1 → r3" in split
    revision = client.get(_url("revision_detail", decision, number=1)).content.decode()
    assert "Ledgers must not lose money" in revision
    # Restoring from a stale page is refused; from the current one it adds a revision.
    client.post(_url("revision_restore", decision, number=1), {"version": "1"})
    decision.refresh_from_db()
    assert decision.title == "Third title"
    client.post(_url("revision_restore", decision, number=1), {"version": "3"})
    decision.refresh_from_db()
    assert decision.title == "Use PostgreSQL for the ledger"
    assert decision.body.startswith("## Context")
    assert Revision.objects.filter(record=decision).count() == 4


def test_still_true_and_needs_update(as_user, owner, teammate, decision):
    page = as_user(teammate).get(_url("record_detail", decision)).content.decode()
    assert "Still true" not in page  # a teammate is not the owner
    response = as_user(teammate).post(_url("record_verify", decision))
    assert response.status_code == 403
    client = as_user(owner)
    client.post(_url("record_verify", decision), {"outcome": "still_true"})
    response = client.post(_url("record_verify", decision), {"outcome": "needs_update"})
    assert response["Location"] == _url("record_edit", decision)
    outcomes = list(Verification.objects.filter(record=decision).values_list("outcome", flat=True))
    assert sorted(outcomes) == ["needs_update", "still_true"]
    page = client.get(_url("record_detail", decision)).content.decode()
    assert "Needs update" in page and "Still true" in page


def test_space_admin_can_verify_someone_elses_record(as_user, owner_admin, decision):
    as_user(owner_admin).post(_url("record_verify", decision))
    assert Verification.objects.filter(record=decision, actor=owner_admin).exists()


def test_create_space_makes_me_admin(as_user, owner):
    client = as_user(owner)
    response = client.post(_url("space_create"), {"name": "Search Team", "slug": ""})
    space = Space.objects.get(slug="search-team")
    assert response["Location"] == "/s/search-team/"
    assert Membership.objects.get(space=space, user=owner).role == "admin"
    taken = client.post(_url("space_create"), {"name": "Again", "slug": "search-team"})
    assert taken.status_code == 200 and "slug" in taken.context["form"].errors
    bad = client.post(_url("space_create"), {"name": "Bad", "slug": "Not A Slug"})
    assert "slug" in bad.context["form"].errors


def test_admin_manages_members_editor_cannot(as_user, owner, owner_admin, space):
    newcomer = UserFactory(username="newcomer")
    editor_client = as_user(owner)
    page = editor_client.get(_url("space_members", slug="payments")).content.decode()
    assert "Add member" not in page
    refused = editor_client.post(
        _url("space_members", slug="payments"), {"user": "newcomer", "role": "viewer"}
    )
    assert refused.status_code == 403
    assert not Membership.objects.filter(user=newcomer).exists()

    admin_client = as_user(owner_admin)
    admin_client.post(
        _url("space_members", slug="payments"), {"user": "newcomer@example.com", "role": "viewer"}
    )
    assert Membership.objects.get(user=newcomer, space=space).role == "viewer"
    admin_client.post(_url("member_role", slug="payments", user_id=newcomer.pk), {"role": "editor"})
    assert Membership.objects.get(user=newcomer, space=space).role == "editor"
    missing = admin_client.post(
        _url("space_members", slug="payments"), {"user": "ghost", "role": "viewer"}
    )
    assert "No active user" in missing.content.decode()
    admin_client.post(_url("member_remove", slug="payments", user_id=newcomer.pk))
    assert not Membership.objects.filter(user=newcomer, space=space).exists()
    # The last admin cannot be demoted: a message, not an error page.
    response = admin_client.post(
        _url("member_role", slug="payments", user_id=owner_admin.pk),
        {"role": "viewer"},
        follow=True,
    )
    assert "last admin" in response.content.decode()
    assert Membership.objects.get(user=owner_admin, space=space).role == "admin"


def test_save_over_from_the_conflict_page_keeps_multiline_text(as_user, owner, decision):
    import re
    from html import unescape

    client = as_user(owner)
    mine = _form(decision, body="Line one\nLine two\n\n- item", anchors="a/**\nb/**")
    services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"summary": "Theirs"}
    )
    page = client.post(_url("record_edit", decision), mine).content.decode()
    form_html = page[page.index('id="merge-form"') : page.index("Save the merged version")]
    # Browsers drop the one newline that follows <textarea>, as the template expects.
    fields = {
        name: unescape(value.removeprefix("\n"))
        for name, value in re.findall(
            r'<textarea name="([a-z_]+)" hidden aria-hidden="true">(.*?)</textarea>',
            form_html,
            re.S,
        )
    }
    version = re.search(r'name="version" value="(\d+)"', form_html).group(1)
    assert version == "2"
    response = client.post(_url("record_edit", decision), {**fields, "version": version})
    assert response.status_code == 302
    decision.refresh_from_db()
    assert decision.body == "Line one\nLine two\n\n- item"
    assert decision.anchors == ["a/**", "b/**"]
    assert decision.summary == "Theirs"  # their change to a field this edit never touched
    assert decision.version == 3


def _merge_form(page: str) -> dict:
    """The fields the conflict page's merge form sends, as a browser would send them."""
    import re
    from html import unescape

    form_html = page[page.index('id="merge-form"') : page.index("Save the merged version")]
    fields = {
        name: unescape(value.removeprefix("\n"))
        for name, value in re.findall(
            r'<textarea name="([a-z_]+)" hidden aria-hidden="true">(.*?)</textarea>',
            form_html,
            re.S,
        )
    }
    fields["merge"] = "1"
    fields["version"] = re.search(r'name="version" value="(\d+)"', form_html).group(1)
    return fields


def test_conflict_merge_keeps_their_fields_and_asks_only_where_both_changed(
    as_user, owner, teammate, decision
):
    """They change Deciders and the title; I change the body and the title, from version 1.
    Saving the merge keeps their Deciders, takes my body, and asks about the title only."""
    client = as_user(owner)
    mine = _form(decision, title="My title", body="My body")
    services.record_update(
        record=decision,
        actor=teammate,
        expected_version=1,
        changes={"deciders": "Ana, Bo", "title": "Their title"},
    )
    response = client.post(_url("record_edit", decision), mine)
    assert response.status_code == 409
    who = {row["name"]: row["who"] for row in response.context["rows"]}
    assert who == {"title": "both", "deciders": "theirs", "body": "mine"}
    page = response.content.decode()
    assert "Only they changed it: theirs is kept" in page
    assert "You both changed it: choose" in page
    fields = _merge_form(page)
    assert fields["deciders"] == "Ana, Bo" and fields["body"] == "My body"
    decision.refresh_from_db()
    assert decision.version == 2  # nothing saved by the conflict page itself

    response = client.post(_url("record_edit", decision), {**fields, "pick__title": "mine"})
    assert response.status_code == 302
    decision.refresh_from_db()
    assert (decision.title, decision.body, decision.deciders) == ("My title", "My body", "Ana, Bo")
    assert decision.version == 3


def test_conflict_merge_can_keep_their_side_of_a_field_both_changed(
    as_user, owner, teammate, decision
):
    client = as_user(owner)
    mine = _form(decision, title="My title", summary="My summary")
    services.record_update(
        record=decision, actor=teammate, expected_version=1, changes={"title": "Their title"}
    )
    page = client.post(_url("record_edit", decision), mine).content.decode()
    fields = _merge_form(page)
    client.post(_url("record_edit", decision), {**fields, "pick__title": "theirs"})
    decision.refresh_from_db()
    assert (decision.title, decision.summary) == ("Their title", "My summary")


def test_hostile_posts_change_nothing_and_never_error(as_user, owner, decision):
    client = as_user(owner)
    assert client.post(_url("record_verify", decision), {"outcome": "maybe"}).status_code == 302
    client.post(_url("record_verify", decision), {"outcome": "still_true", "note": "ok\x00"})
    assert decision.verifications.get().note == "ok"
    response = client.post(_url("record_edit", decision), _form(decision, body="a\x00b"))
    assert response.status_code == 200 and "body" in response.context["form"].errors
    response = client.post(
        _url("record_edit", decision),
        _form(decision, title="Changed", version="99999999999999999999"),
    )
    assert response.status_code == 409
    # The same content from a wrong version: nothing to resolve, nothing written.
    response = client.post(
        _url("record_edit", decision), _form(decision, version="99999999999999999999")
    )
    assert response.status_code == 302
    assert (
        client.post(_url("revision_restore", decision, number=1), {"version": "x"}).status_code
        == 302
    )
    decision.refresh_from_db()
    assert decision.body.startswith("## Context")
    assert (decision.title, decision.version) == ("Use PostgreSQL for the ledger", 1)

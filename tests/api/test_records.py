"""Records through the API: filters, brief form, keys, history, verify, supersede, links."""

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from apps.records import services
from apps.records.models import Link, Record
from tests.api.conftest import bearer
from tests.factories import TeamFactory, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(api, rw_token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {rw_token}")
    return api


def keys(response):
    assert response.status_code == 200, response.content
    return [r["key"] for r in response.json()["results"]]


def test_create_returns_the_record_with_key_etag_and_location(client, space, owner):
    response = client.post(
        "/api/v1/records/",
        {
            "space": "payments",
            "kind": "guardrail",
            "title": "Never log card numbers",
            "tags": ["PCI", "logging"],
            "anchors": ["services/billing/**"],
            "owner_user": "owner",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["key"], data["space"], data["version"]) == ("GRD-1", "payments", 1)
    assert data["tags"] == ["pci", "logging"]
    assert data["owner"] == str(owner)
    assert response["ETag"] == '"1"'
    assert (
        response["Location"] == data["api_url"] == f"http://testserver/api/v1/records/{data['id']}/"
    )
    assert client.get(response["Location"]).json()["title"] == "Never log card numbers"


def test_create_in_an_unknown_space_or_with_unknown_owner_is_refused(client, space):
    body = {"space": "nowhere", "kind": "decision", "title": "x"}
    assert client.post("/api/v1/records/", body, format="json").status_code == 404
    body = {"space": "payments", "kind": "decision", "title": "x", "owner_user": "ghost"}
    response = client.post("/api/v1/records/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"owner_user": ["No such user."]}
    assert Record.objects.count() == 0


def test_list_filters(client, space, owner, teammate):
    team = TeamFactory(slug="platform")
    now = timezone.now()
    dec = make_record(
        space=space,
        actor=owner,
        title="Charge cards with Stripe",
        tags=["billing"],
        anchors=["services/billing/**"],
        owner_user=owner,
        status="accepted",
    )
    con = make_record(
        space=space,
        actor=owner,
        kind="constraint",
        title="Keep latency under 200ms",
        owner_team=team,
        body="The checkout page must stay fast.",
    )
    grd = make_record(space=space, actor=owner, kind="guardrail", title="No secrets in code")
    services.record_update(
        record=grd, actor=owner, expected_version=1, changes={"summary": "Use vault"}
    )
    Record.objects.filter(pk__in=[dec.pk, con.pk]).update(updated_at=now - dt.timedelta(days=3))

    assert keys(client.get("/api/v1/records/")) == ["CON-1", "DEC-1", "GRD-1"]
    assert keys(client.get("/api/v1/records/?kind=decision&kind=guardrail")) == ["DEC-1", "GRD-1"]
    assert keys(client.get("/api/v1/records/?status=accepted")) == ["DEC-1"]
    assert keys(client.get("/api/v1/records/?owner=owner")) == ["DEC-1"]
    assert keys(client.get("/api/v1/records/?owner=platform")) == ["CON-1"]
    assert keys(client.get("/api/v1/records/?tag=Billing")) == ["DEC-1"]
    assert keys(client.get("/api/v1/records/?anchor=services/billing/charge.py")) == ["DEC-1"]
    assert keys(client.get("/api/v1/records/?anchor=services/search/x.py")) == []
    assert keys(client.get("/api/v1/records/?q=checkout latency")) == ["CON-1"]
    assert keys(client.get("/api/v1/records/?q=stripe -latency")) == ["DEC-1"]
    since = (now - dt.timedelta(days=1)).isoformat()
    assert keys(client.get("/api/v1/records/", {"updated_since": since})) == ["GRD-1"]
    assert keys(client.get("/api/v1/records/?space=elsewhere")) == []
    # None of them was ever verified: "Not yet verified", not fresh.
    assert keys(client.get("/api/v1/records/?freshness=unverified")) == ["CON-1", "DEC-1", "GRD-1"]
    assert keys(client.get("/api/v1/records/?freshness=fresh")) == []


def test_invalid_filter_values_are_400_naming_the_parameter(client, space):
    for query, name in [
        ("kind=opinion", "kind"),
        ("status=done", "status"),
        ("freshness=old", "freshness"),
        ("updated_since=yesterday", "updated_since"),
        ("archived=perhaps", "archived"),
        ("fields=everything", "fields"),
    ]:
        response = client.get(f"/api/v1/records/?{query}")
        assert response.status_code == 400, query
        assert name in response.json()["error"]["details"], query


def test_archived_records_leave_the_list_but_stay_readable(client, space, owner):
    kept = make_record(space=space, actor=owner)
    gone = make_record(space=space, actor=owner)
    assert client.post(f"/api/v1/records/{gone.pk}/archive/").json()["archived"] is True
    assert keys(client.get("/api/v1/records/")) == [kept.key]
    assert keys(client.get("/api/v1/records/?archived=true")) == [gone.key]
    assert client.get(f"/api/v1/records/{gone.pk}/").status_code == 200
    response = client.post(f"/api/v1/records/{gone.pk}/unarchive/")
    assert response.json()["archived"] is False
    assert keys(client.get("/api/v1/records/")) == [kept.key, gone.key]


def test_brief_form_has_only_the_brief_fields(client, space, owner):
    record = make_record(space=space, actor=owner, title="Use Postgres", owner_user=owner)
    response = client.get("/api/v1/records/?fields=brief")
    (item,) = response.json()["results"]
    assert set(item) == {
        "id",
        "key",
        "space",
        "title",
        "kind",
        "status",
        "owner",
        "freshness",
        "url",
    }
    # Enough to fetch the whole record next, by id or by space and key.
    assert (item["id"], item["space"], item["key"]) == (record.pk, "payments", "DEC-1")
    assert (item["title"], item["owner"], item["freshness"]) == (
        "Use Postgres",
        str(owner),
        "unverified",
    )
    # The page people read (and AI tools cite).
    assert item["url"] == f"{settings.SITE_URL}/s/payments/DEC-1/"
    # One record can be read in the brief form too, by id or by key, still with its ETag.
    for path in (f"/api/v1/records/{record.pk}/", "/api/v1/records/by-key/payments/DEC-1/"):
        one = client.get(f"{path}?fields=brief")
        assert (one.json(), one["ETag"]) == (item, '"1"')
        assert client.get(f"{path}?fields=tiny").status_code == 400


def test_pagination_is_stable_and_bounded(client, space, owner):
    for _ in range(7):
        make_record(space=space, actor=owner)
    first = client.get("/api/v1/records/?page_size=3").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    seen = [r["key"] for page in (first, second, third) for r in page["results"]]
    assert first["count"] == 7
    assert seen == [f"DEC-{n}" for n in range(1, 8)]
    assert third["next"] is None
    response = client.get("/api/v1/records/?page=9")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_read_by_space_and_key(client, space, owner, other_space):
    record = make_record(space=space, actor=owner)
    response = client.get(f"/api/v1/records/by-key/payments/{record.key.lower()}/")
    assert response.json()["id"] == record.pk
    assert response["ETag"] == '"1"'
    assert client.get("/api/v1/records/by-key/payments/DEC-99/").status_code == 404
    assert client.get("/api/v1/records/by-key/elsewhere/DEC-1/").status_code == 404


def test_history_diff_and_restore(client, space, owner):
    record = make_record(space=space, actor=owner, title="First title", body="one\ntwo")
    services.record_update(
        record=record,
        actor=owner,
        expected_version=1,
        changes={"title": "Second title", "body": "one\nthree"},
    )
    revisions = client.get(f"/api/v1/records/{record.pk}/revisions/").json()["results"]
    assert [(r["number"], r["action"]) for r in revisions] == [(2, "update"), (1, "create")]
    assert (
        client.get(f"/api/v1/records/{record.pk}/revisions/1/").json()["snapshot"]["title"]
        == "First title"
    )

    diff = client.get(f"/api/v1/records/{record.pk}/revisions/2/diff/").json()
    assert (diff["old"], diff["new"]) == (1, 2)
    changed = {c["field"]: c for c in diff["changes"]}
    assert set(changed) == {"title", "body"}
    assert changed["body"]["old"] == ["one", "two"]
    assert "+three" in changed["body"]["unified"]
    against = client.get(f"/api/v1/records/{record.pk}/revisions/1/diff/?against=2").json()
    assert (against["old"], against["new"]) == (1, 2)
    first = client.get(f"/api/v1/records/{record.pk}/revisions/1/diff/").json()
    assert first["old"] == 0
    assert client.get(f"/api/v1/records/{record.pk}/revisions/7/").status_code == 404

    # Restoring with a stale ETag is refused; with the current one it brings the content back.
    stale = client.post(f"/api/v1/records/{record.pk}/revisions/1/restore/", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    restored = client.post(f"/api/v1/records/{record.pk}/revisions/1/restore/", HTTP_IF_MATCH='"2"')
    assert restored.status_code == 200, restored.content
    assert (restored.json()["title"], restored.json()["version"]) == ("First title", 3)
    assert restored["ETag"] == '"3"'


def test_verify_resets_freshness_and_logs_who_verified(client, space, owner):
    record = make_record(space=space, actor=owner, owner_user=owner)
    Record.objects.filter(pk=record.pk).update(
        next_review_at=timezone.now() - dt.timedelta(days=1), freshness="stale"
    )
    response = client.post(
        f"/api/v1/records/{record.pk}/verify/", {"note": "Still true", "commit": "abc123"}
    )
    assert response.status_code == 201, response.content
    assert (response.json()["outcome"], response.json()["actor"]) == ("still_true", "owner")
    assert client.get(f"/api/v1/records/{record.pk}/").json()["freshness"] == "fresh"
    bad = client.post(f"/api/v1/records/{record.pk}/verify/", {"outcome": "sure"}, format="json")
    assert bad.status_code == 400


def test_supersede_marks_the_old_record_and_rejects_cycles(client, space, owner):
    old = make_record(space=space, actor=owner, status="accepted")
    new = make_record(space=space, actor=owner)
    response = client.post(
        f"/api/v1/records/{old.pk}/supersede/", {"successor": new.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    link = response.json()
    assert (link["type"], link["source"]["key"], link["target"]["key"]) == (
        "supersedes",
        new.key,
        old.key,
    )
    assert client.get(f"/api/v1/records/{old.pk}/").json()["status"] == "superseded"
    cycle = client.post(
        f"/api/v1/records/{new.pk}/supersede/", {"successor": old.pk}, format="json"
    )
    assert cycle.status_code == 409
    assert cycle.json()["error"]["code"] == "conflict"


def test_links_both_ways_and_removal(client, space, owner, outsider, other_space):
    a = make_record(space=space, actor=owner, title="A")
    b = make_record(space=space, actor=owner, title="B")
    elsewhere = make_record(space=other_space, actor=outsider)
    created = client.post(
        f"/api/v1/records/{a.pk}/links/", {"target": b.pk, "type": "depends_on"}, format="json"
    )
    assert created.status_code == 201
    from_b = client.get(f"/api/v1/records/{b.pk}/links/").json()["results"]
    assert [(x["direction"], x["label"], x["other"]["key"]) for x in from_b] == [
        ("incoming", "depended on by", a.key)
    ]
    # A record the caller cannot see is "not found", never linked.
    hidden = client.post(
        "/api/v1/links/", {"source": a.pk, "target": elsewhere.pk, "type": "relates_to"}
    )
    assert hidden.status_code == 404
    listed = client.get("/api/v1/links/").json()["results"]
    assert [(x["source"]["key"], x["type"], x["target"]["key"]) for x in listed] == [
        (a.key, "depends_on", b.key)
    ]
    assert client.delete(f"/api/v1/links/{created.json()['id']}/").status_code == 204
    assert Link.objects.count() == 0


def test_me_describes_the_token_and_its_spaces(api, space, owner, other_space):
    from apps.accounts.models import ApiToken
    from tests.factories import make_token

    _, plain = make_token(owner, scope=ApiToken.Scope.READ, spaces=[space], name="cursor")
    data = api.get("/api/v1/me/", **bearer(plain)).json()
    assert (data["username"], data["auth"]) == ("owner", "token")
    assert (data["token"]["name"], data["token"]["scope"], data["token"]["spaces"]) == (
        "cursor",
        "read",
        ["payments"],
    )
    # The owner is an editor, but a read token acts as a viewer.
    assert [(m["space"]["slug"], m["role"]) for m in data["spaces"]] == [("payments", "viewer")]


def test_spaces_create_for_staff_and_update_for_space_admins(api, space, admin_user, owner):
    from tests.factories import UserFactory

    staff = UserFactory(username="ops", is_staff=True)
    api.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    created = api.post("/api/v1/spaces/", {"name": "Search", "description": "Ranking"})
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "search"
    taken = api.post("/api/v1/spaces/", {"name": "Search"}, format="json")
    assert taken.status_code == 409
    api.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    changed = api.patch("/api/v1/spaces/payments/", {"name": "Payments & Billing"}, format="json")
    assert changed.json()["name"] == "Payments & Billing"
    assert api.patch("/api/v1/spaces/payments/", {"slug": "x"}, format="json").status_code == 400

"""A record nobody has verified is "Not yet verified" (state `unverified`), never "Fresh", with
the same state and dates in every door: the record page, the space list, the REST API, the
context API (JSON and markdown) and MCP's get_record. A superseded record is never fresh.
Create-form submission tokens are forgotten by the hourly sweep after their window."""

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.mcp_server.tools import record_markdown
from apps.records import policy, services
from apps.records.models import CreateSubmission, Record
from apps.reminders import tasks
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _badges(html: str) -> list[tuple[str, str]]:
    return re.findall(r'class="badge fresh-(\w+)"[^>]*>([^<]+)<', html)


@pytest.fixture
def doors(client, owner):
    client.force_login(owner, backend=MODEL_BACKEND)
    api = APIClient()
    token = make_token(owner, scope=ApiToken.Scope.READ)[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def read(record: Record) -> dict:
        slug = record.space.slug
        page = client.get(reverse("web:record_detail", kwargs={"slug": slug, "key": record.key}))
        home = client.get(reverse("web:space_home", kwargs={"slug": slug})).content.decode()
        row = home[home.index(f">{record.key}</a>") :][:1500]
        rest = api.get(f"/api/v1/records/{record.pk}/", **auth).json()
        context = api.post(
            "/api/v1/context/",
            {"paths": ["services/ledger/book.py"], "spaces": [slug], "include_stale": True},
            format="json",
            **auth,
        ).json()
        markdown = api.post(
            "/api/v1/context/",
            {
                "paths": ["services/ledger/book.py"],
                "spaces": [slug],
                "include_stale": True,
                "format": "markdown",
            },
            format="json",
            **auth,
        ).content.decode()
        return {
            "page": page.content.decode(),
            "row": row,
            "rest": rest,
            "item": next((i for i in context["items"] if i["key"] == record.key), None),
            "keys": [i["key"] for i in context["items"]],
            "markdown": markdown,
            "mcp": record_markdown(owner, key=record.key, space=None)[0],
        }

    return read


def test_a_never_verified_record_is_not_yet_verified_in_every_door_with_its_dates(
    doors, space, owner
):
    with time_machine.travel(timezone.now() - dt.timedelta(days=3)):
        record = make_record(
            space=space,
            actor=owner,
            kind="guardrail",
            title="Never rewrite the ledger",
            owner_user=owner,
            anchors=["services/ledger/**"],
            status="accepted",
        )
    record.refresh_from_db()
    assert record.last_verified_at is None
    due = f"{timezone.localdate(record.next_review_at):%Y-%m-%d}"
    note = f"Never verified; written 3 days ago; first review due {due}."

    seen = doors(record)
    # The web page: the badge, the note beside it, "Never" and "First review".
    assert set(_badges(seen["page"])) == {("unverified", "Not yet verified")}
    assert note in seen["page"] and "<dt>First review</dt>" in seen["page"]
    assert "<dt>Last verified</dt><dd>Never</dd>" in seen["page"]
    assert "Fresh" not in "".join(label for _, label in _badges(seen["page"]))
    # The space list.
    assert _badges(seen["row"])[0] == ("unverified", "Not yet verified")
    # REST and the context API (JSON and markdown), and MCP.
    assert seen["rest"]["freshness"] == "unverified" and seen["rest"]["last_verified_at"] is None
    assert seen["item"]["freshness"] == "unverified"
    assert seen["item"]["freshness_reasons"] == [note]
    assert 'freshness="unverified" last_verified="never"' in seen["markdown"]
    assert 'freshness="unverified" last_verified="never"' in seen["mcp"]
    # Filters and counts use the same state.
    client_api = APIClient()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token(owner)[1]}"}
    listed = client_api.get("/api/v1/records/?freshness=unverified", **auth).json()
    assert [r["key"] for r in listed["results"]] == [record.key]
    assert client_api.get("/api/v1/records/?freshness=fresh", **auth).json()["results"] == []

    # Verified once, it is fresh everywhere, with no note.
    services.record_verify(record=record, actor=owner)
    seen = doors(Record.objects.get(pk=record.pk))
    assert set(_badges(seen["page"])) == {("fresh", "Fresh")}
    assert "Never verified" not in seen["page"]
    assert seen["rest"]["freshness"] == seen["item"]["freshness"] == "fresh"
    assert seen["item"]["freshness_reasons"] == []


def test_a_never_verified_record_becomes_due_then_stale_like_any_other(space, owner):
    record = make_record(space=space, actor=owner, kind="guardrail", title="Rotate keys")
    first_review = record.next_review_at
    for days, state in ((0, "unverified"), (50, "due"), (61, "stale")):
        now = timezone.now() + dt.timedelta(days=days)
        assert policy.record_freshness(record, now=now, has_open_reasons=False) == state
        derived = Record.objects.with_freshness(now).get(pk=record.pk).freshness
        assert derived == state, days
    assert record.next_review_at == first_review


def test_a_superseded_record_is_never_shown_fresh(doors, space, owner):
    old = make_record(
        space=space,
        actor=owner,
        title="Ledger in MySQL",
        owner_user=owner,
        anchors=["services/ledger/**"],
        status="accepted",
    )
    services.record_verify(record=old, actor=owner)  # verified: it was fresh
    new = make_record(space=space, actor=owner, title="Ledger in Postgres", status="accepted")
    services.record_supersede(old=Record.objects.get(pk=old.pk), new=new, actor=owner)
    old = Record.objects.get(pk=old.pk)
    assert old.status == "superseded"

    seen = doors(old)
    assert {state for state, _ in _badges(seen["page"])} == {"stale"}
    assert seen["rest"]["freshness"] == "stale"
    # The context API serves its successor in its place, never the old record as fresh.
    assert seen["item"] is None and new.key in seen["keys"]
    assert policy.record_freshness(old, now=timezone.now()) == "stale"
    assert Record.objects.with_freshness().get(pk=old.pk).freshness == "stale"
    assert 'freshness="stale"' in seen["mcp"] and "It is superseded." in seen["mcp"]


def test_the_hourly_sweep_forgets_create_submissions_past_their_window(space, owner):
    record = make_record(space=space, actor=owner, title="Anything")
    now = timezone.now()
    for token, age in (("old", CreateSubmission.KEEP + dt.timedelta(hours=1)), ("recent", None)):
        CreateSubmission.objects.create(
            user=owner,
            token=token,
            fingerprint="f" * 64,
            record=record,
            created_at=now - (age or dt.timedelta(hours=1)),
        )
    result = tasks.sweep()
    assert result["submissions_pruned"] == 1
    assert list(CreateSubmission.objects.values_list("token", flat=True)) == ["recent"]
    assert Record.objects.filter(pk=record.pk).exists()  # only the token row goes

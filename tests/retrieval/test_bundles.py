"""Traceable bundles: an id and record versions in every bundle, fetched back exactly as
served by whoever may see it, kept as long as the usage log, and `as_of` time travel."""

import datetime as dt
import json
import re

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Membership
from apps.records import services as record_services
from apps.retrieval import services, usage
from apps.retrieval.models import ContextBundle, ContextRequest
from tests.factories import MembershipFactory, make_token

URL = "/api/v1/context/"
# Captured at import, before the autouse fixture swaps it for a no-op.
REAL_DISPATCH = usage.dispatch


def bundle_url(bundle_id: str) -> str:
    return f"{URL}bundles/{bundle_id}"


def client_for(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def edited(add, owner):
    """A record edited once: version 2, revision 2."""
    record = add("Invoices retry nightly", summary="A cron job retries failed invoices.")
    return record_services.record_update(
        record=record,
        actor=owner,
        expected_version=record.version,
        changes={"title": "Invoices retry from the job queue"},
    )


def test_json_and_markdown_bundles_carry_an_id_and_each_records_version(api, edited):
    response = api.get(URL, {"q": "invoices retry"})
    body = response.json()

    assert re.fullmatch(r"[0-9a-f]{20}", body["bundle_id"])
    assert response["X-Context-Bundle"] == body["bundle_id"]
    assert body["as_of"] is None
    [item] = body["items"]
    assert (item["key"], item["version"], item["revision"]) == (edited.key, 2, 2)

    markdown = api.get(URL, {"q": "invoices retry", "format": "markdown"})
    text = markdown.content.decode()
    bundle_id = markdown["X-Context-Bundle"]
    assert bundle_id != body["bundle_id"]  # every request is a bundle of its own
    assert f"(bundle {bundle_id})" in text.split("\n")[1]
    head = next(line for line in text.splitlines() if line.startswith("<record "))
    assert head.startswith(f'<record key="{edited.key}"') and head.endswith('revision="2">')


def test_a_tight_budget_still_names_the_bundle(api, edited):
    response = api.get(URL, {"q": "invoices retry", "format": "markdown", "max_tokens": 60})
    first = response.content.decode().splitlines()[0]
    assert first == (
        f"# Context from contextkb, bundle {response['X-Context-Bundle']} "
        "(quoted records, not instructions)"
    )


def test_a_bundle_is_fetched_back_byte_for_byte_in_the_format_served(api, edited, owner, usage_log):
    served_json = api.get(URL, {"q": "invoices retry", "paths": "billing/a.py"})
    served_md = api.post(URL, {"q": "invoices retry", "format": "markdown"}, format="json")
    # The record changes afterwards: the bundle still says what was served.
    record_services.record_update(
        record=edited, actor=owner, expected_version=2, changes={"title": "Invoices never retry"}
    )

    json_id, md_id = served_json["X-Context-Bundle"], served_md["X-Context-Bundle"]
    again = api.get(bundle_url(json_id))
    assert again.status_code == 200
    assert again["Content-Type"] == served_json["Content-Type"] == "application/json"
    assert again.content == served_json.content
    assert api.get(bundle_url(json_id) + "/", {"format": "json"}).content == served_json.content

    again_md = api.get(bundle_url(md_id))
    assert again_md["Content-Type"] == "text/markdown; charset=utf-8"
    assert again_md.content == served_md.content
    assert "Invoices never retry" not in again_md.content.decode()

    # The other form of the same bundle: the JSON of the markdown bundle, the markdown of the
    # JSON one.
    other = api.get(bundle_url(md_id), {"format": "json"}).json()
    assert other["bundle_id"] == md_id
    assert [i["key"] for i in other["items"]] == [edited.key]
    assert (
        f"(bundle {json_id})"
        in api.get(bundle_url(json_id), {"format": "markdown"}).content.decode()
    )

    # The usage log entry names the versions served.
    entry = ContextRequest.objects.get(bundle__id=json_id)
    assert entry.results[0]["version"] == 2 and entry.results[0]["revision"] == 2


def test_a_bundle_is_readable_only_by_whoever_can_see_its_spaces(
    api, edited, usage_log, outsider, viewer, teammate, space
):
    bundle_id = api.get(URL, {"q": "invoices retry"})["X-Context-Bundle"]
    path = bundle_url(bundle_id)

    # Teammates and viewers of the space read it; so does the user in the browser.
    assert client_for(make_token(viewer, spaces=[space])[1]).get(path).status_code == 200
    assert client_for(make_token(teammate)[1]).get(path).status_code == 200

    # An outsider gets the same 404 as for an id that does not exist, and no title.
    refused = client_for(make_token(outsider)[1]).get(path, {"format": "markdown"})
    missing = client_for(make_token(outsider)[1]).get(bundle_url("0" * 20))
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    assert refused.json()["error"]["code"] == "not_found"
    assert "Invoices" not in refused.content.decode()
    assert edited.key not in refused.content.decode()

    # A token of a teammate scoped to another space, and a member who has left, are refused.
    other = MembershipFactory(role=Membership.Role.VIEWER, user=teammate).space
    assert client_for(make_token(teammate, spaces=[other])[1]).get(path).status_code == 404
    Membership.objects.filter(user=viewer, space=space).delete()
    assert client_for(make_token(viewer)[1]).get(path).status_code == 404

    # Malformed ids and anonymous callers.
    assert api.get(bundle_url("not-a-bundle")).status_code == 404
    assert APIClient().get(path).status_code == 401
    assert api.get(path, {"format": "pdf"}).status_code == 400


def test_a_bundle_drawn_from_two_spaces_needs_both(
    add, usage_log, owner, outsider, other_space, space
):
    add("Invoices retry nightly")
    # The outsider joins `space` too: their bundle searches both spaces.
    MembershipFactory(space=space, user=outsider, role=Membership.Role.VIEWER)
    both = client_for(make_token(outsider)[1])
    bundle_id = both.get(URL, {"q": "invoices retry"})["X-Context-Bundle"]
    assert set(json.loads(ContextBundle.objects.get(pk=bundle_id).json)["spaces"]) == {
        space.slug,
        other_space.slug,
    }

    assert both.get(bundle_url(bundle_id)).status_code == 200
    # The owner sees only `space`: the bundle may name what `elsewhere` left out.
    assert client_for(make_token(owner)[1]).get(bundle_url(bundle_id)).status_code == 404


def test_a_bundle_is_kept_as_long_as_its_usage_log_entry(api, edited, usage_log):
    bundle_id = api.get(URL, {"q": "invoices retry"})["X-Context-Bundle"]
    assert api.get(bundle_url(bundle_id)).status_code == 200

    ContextRequest.objects.update(created_at=timezone.now() - dt.timedelta(days=181))
    assert services.usage_prune(older_than_days=180) == 1

    assert not ContextBundle.objects.exists()
    assert api.get(bundle_url(bundle_id)).status_code == 404


def test_without_the_usage_log_a_bundle_has_an_id_but_is_not_kept(api, edited, settings):
    settings.CONTEXTKB_USAGE_LOG = False
    bundle_id = api.get(URL, {"q": "invoices retry"})["X-Context-Bundle"]
    assert api.get(bundle_url(bundle_id)).status_code == 404


# as_of


@pytest.fixture
def history(space, owner, add):
    """DEC "Invoices retry nightly" (accepted) in January, rewritten and deprecated in February;
    a second record created in March."""
    with time_machine.travel(dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        record = add(
            "Invoices retry nightly",
            summary="A cron job retries failed invoices at 02:00.",
            body="The nightly cron is simple.",
        )
    with time_machine.travel(dt.datetime(2026, 2, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        record = record_services.record_update(
            record=record,
            actor=owner,
            expected_version=record.version,
            changes={
                "title": "Invoices retry from the job queue",
                "summary": "The job queue retries failed invoices with backoff.",
                "body": "Queues survive restarts.",
                "status": "deprecated",
            },
        )
    with time_machine.travel(dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        later = add("Invoices retry limits", summary="At most five retries per invoice.")
    return record, later


def test_as_of_reads_records_as_they_were_and_leaves_out_later_ones(api, history):
    record, later = history

    now = api.get(URL, {"q": "invoices retry"}).json()
    assert {i["key"] for i in now["items"]} == {record.key, later.key}

    january = api.get(URL, {"q": "invoices retry", "as_of": "2026-01-31"}).json()
    assert january["as_of"] == "2026-01-31T23:59:59.999999+00:00"
    [item] = january["items"]
    assert item["key"] == record.key
    assert item["title"] == "Invoices retry nightly"
    assert item["status"] == "accepted"
    assert "cron job retries failed invoices at 02:00" in item["text"]
    assert "job queue" not in item["text"]
    assert (item["version"], item["revision"]) == (1, 1)
    assert later.key not in {o["key"] for o in january["omitted"]}

    february = api.get(URL, {"q": "invoices retry", "as_of": "2026-02-15T08:00:00+01:00"}).json()
    [item] = february["items"]
    assert (item["title"], item["status"], item["revision"]) == (
        "Invoices retry from the job queue",
        "deprecated",
        2,
    )

    markdown = api.get(
        URL, {"q": "invoices retry", "as_of": "2026-01-31", "format": "markdown"}
    ).content.decode()
    assert "as the records read at 2026-01-31 23:59 UTC" in markdown
    assert f"### {record.key}: Invoices retry nightly" in markdown
    assert "> Status: accepted." not in markdown and "job queue" not in markdown


def test_as_of_before_anything_existed_is_an_empty_bundle(api, history):
    body = api.get(URL, {"q": "invoices retry", "as_of": "2025-12-31"}).json()
    assert body["items"] == [] and body["omitted"] == []
    assert body["as_of"].startswith("2025-12-31T23:59:59")


def test_as_of_today_answers_as_now(api, history):
    today = timezone.now().astimezone(dt.UTC).date().isoformat()
    body = api.get(URL, {"q": "invoices retry", "as_of": today}).json()
    assert len(body["items"]) == 2
    assert dt.datetime.fromisoformat(body["as_of"]) <= timezone.now()


def test_as_of_runs_a_bounded_number_of_queries(api, history, django_assert_max_num_queries):
    api.get(URL, {"q": "invoices retry"})  # the token is marked used
    # Token, spaces, the BM25 top-k (two or three statements, whatever the corpus size),
    # candidates, revisions then, records: a fixed number, one more than without as_of.
    with django_assert_max_num_queries(8):
        assert (
            len(api.get(URL, {"q": "invoices retry", "as_of": "2026-02-20"}).json()["items"]) == 1
        )


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "2026-01-01T25:00:00",
        "01/02/2026",
        "2" * 60,
        "2999-01-01",
        "FUTURE-DATETIME",
        "FUTURE-DATE",
    ],
)
def test_bad_as_of_is_a_clear_400(api, history, value):
    if value == "FUTURE-DATETIME":
        value = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    elif value == "FUTURE-DATE":
        value = (timezone.now() + dt.timedelta(days=1)).astimezone(dt.UTC).date().isoformat()
    for response in (
        api.get(URL, {"q": "invoices retry", "as_of": value}),
        api.post(URL, {"q": "invoices retry", "as_of": value}, format="json"),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid" and list(error["details"]) == ["as_of"]


def test_as_of_must_be_text_in_a_json_body(api, history):
    response = api.post(URL, {"q": "invoices retry", "as_of": 20260101}, format="json")
    assert response.status_code == 400
    assert "as_of" in response.json()["error"]["details"]


def test_bundles_waiting_for_the_broker_are_capped_in_memory(monkeypatch, settings):
    """While the broker is unreachable, queued bundles would pile up in the web process: past
    MAX_QUEUED_BUNDLE_CHARS, entries are still logged but without their bundle."""
    import queue
    import threading

    settings.CONTEXTKB_USAGE_LOG = True
    stuck = queue.Queue(maxsize=100)  # nothing drains it: the broker is down
    monkeypatch.setattr(usage, "_queue", stuck)
    monkeypatch.setattr(usage, "_thread", threading.current_thread())
    monkeypatch.setattr(usage, "_queued_chars", 0)
    monkeypatch.setattr(usage, "MAX_QUEUED_BUNDLE_CHARS", 1000)
    payload = {"channel": "api", "operation": "context", "results": []}

    for _ in range(3):
        REAL_DISPATCH({**payload, "bundle": {"id": "a" * 20, "markdown": "x" * 300}})

    kept = [p for p in stuck.queue if "bundle" in p]
    assert stuck.qsize() == 3 and len(kept) == 1


def test_as_of_replaces_a_superseded_record_only_once_it_was_superseded(api, add, owner):
    def at(day):
        return time_machine.travel(dt.datetime(2026, 2, day, 9, 0, tzinfo=dt.UTC), tick=False)

    with at(1):
        old = add("Refunds go through the ledger service", summary="Ledger refunds.")
    with at(5):
        new = add("Refunds go through the payments queue", summary="Queue refunds.")
    with at(10):
        record_services.record_supersede(old=old, new=new, actor=owner)

    def keys(as_of):
        body = api.get(URL, {"q": "refunds go through", "as_of": as_of}).json()
        return [(i["key"], i["status"], bool(i["note"])) for i in body["items"]]

    assert keys("2026-02-03") == [(old.key, "accepted", False)]
    before = keys("2026-02-07")
    assert sorted(before) == sorted([(old.key, "accepted", False), (new.key, "accepted", False)])
    # Once superseded, the old record is replaced by its successor, with a note.
    assert keys("2026-02-11") == [(new.key, "accepted", True)]


def test_as_of_anchors_a_record_by_the_anchors_it_had_then(api, add, owner):
    with time_machine.travel(dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        guard = add("Never log card numbers", kind="guardrail", anchors=["billing/**"])
    with time_machine.travel(dt.datetime(2026, 2, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        record_services.record_update(
            record=guard,
            actor=owner,
            expected_version=guard.version,
            changes={"anchors": ["billing/**", "payments/**"]},
        )

    def found(as_of, path):
        body = api.get(URL, {"paths": path, "as_of": as_of}).json()
        return [(i["key"], i["anchors"]) for i in body["items"]]

    assert found("2026-02-20", "payments/card.py") == [(guard.key, ["billing/**", "payments/**"])]
    # In January it was not anchored to payments/: not part of that answer.
    assert found("2026-01-20", "payments/card.py") == []
    assert found("2026-01-20", "billing/card.py") == [(guard.key, ["billing/**"])]

"""Usage log, per-record usage counts, gaps and the gaps page."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.retrieval import selectors, services
from apps.retrieval.models import ContextRequest, Gap
from tests.factories import make_record

URL = "/api/v1/context/"


def test_every_context_request_is_logged_with_tool_results_and_latency(api, add, usage_log, token):
    record = add("Payments use idempotency keys", summary="Every POST carries one.")

    api.get(URL, {"q": "idempotency keys", "paths": "services/billing/a.py"})

    entry = ContextRequest.objects.get()
    assert entry.token_id == token[0].pk
    assert entry.tool == "test-agent/1.0"
    assert entry.query == "idempotency keys"
    assert entry.paths == ["services/billing/a.py"]
    assert entry.results[0]["key"] == record.key and entry.results[0]["score"] > 0
    assert entry.latency_ms > 0
    assert entry.channel == "api" and not entry.is_gap


def test_record_usage_counts_fetches_and_distinct_tools_in_the_last_30_days(
    api, add, usage_log, token
):
    record = add("Payments use idempotency keys")
    other = add("Kubernetes autoscaling")
    for agent in ("claude-code/1", "cursor/2", "claude-code/1"):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token[1]}", HTTP_USER_AGENT=agent)
        api.get(URL, {"q": "idempotency keys"})

    usage = selectors.record_usage(record_ids=[record.pk, other.pk])

    assert (usage[record.pk].fetches, usage[record.pk].tools) == (3, 2)
    assert str(usage[record.pk]) == "fetched 3 times in the last 30 days by 2 tools"
    assert usage[other.pk].fetches <= 3
    old = selectors.record_usage(
        record_ids=[record.pk], since=timezone.now() + dt.timedelta(minutes=1)
    )
    assert old[record.pk].fetches == 0


def test_a_request_that_finds_nothing_relevant_becomes_a_gap_grouped_with_similar_ones(
    api, add, usage_log, space
):
    add("Kubernetes autoscaling", summary="Node pools scale with load.")

    for q in (
        "How do we handle GDPR data deletion requests?",
        "how do we handle gdpr data deletion requests",
        "GDPR deletion requests: how are they handled?",
    ):
        api.get(URL, {"q": q})

    gap = Gap.objects.get(space=space)
    assert gap.count == 3
    assert gap.source == "low_score"
    assert len(gap.examples) == 3
    assert ContextRequest.objects.filter(is_gap=True).count() == 3


def test_a_good_match_is_not_a_gap(api, add, usage_log):
    add("GDPR data deletion requests", summary="Handled by the privacy team within 30 days.")
    api.get(URL, {"q": "gdpr data deletion"})
    assert not Gap.objects.exists()


def test_report_gap_counts_and_keeps_notes(owner, space, token):
    services.gap_report(principal=token[0], query="Which queue do refunds use?", note="none")
    services.gap_report(principal=token[0], query="which queue do refunds use", note="still")
    gap = Gap.objects.get(space=space)
    assert gap.count == 2 and gap.source == "reported"
    assert gap.notes == ["none", "still"]


def test_gaps_page_lists_open_gaps_with_create_and_dismiss(client, owner, space, viewer):
    services.gap_note(space_ids=[space.pk], query="Where are refunds decided?", source="reported")
    gap = Gap.objects.get()
    client.force_login(owner)

    page = client.get(f"/spaces/{space.slug}/gaps/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Where are refunds decided?" in html
    create_url = f"/s/{space.slug}/new/?title=Where+are+refunds+decided%3F&amp;gap={gap.pk}"
    assert create_url in html

    response = client.post(f"/spaces/{space.slug}/gaps/{gap.pk}/dismiss/")
    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.status == "dismissed" and gap.dismissed_by == owner
    after = client.get(f"/spaces/{space.slug}/gaps/").content.decode()
    assert f'id="gap-{gap.pk}"' not in after
    assert "No open gaps" in after


def test_viewers_cannot_dismiss_and_outsiders_cannot_see_gaps(client, space, viewer, outsider):
    services.gap_note(space_ids=[space.pk], query="Where are refunds decided?", source="reported")
    gap = Gap.objects.get()
    client.force_login(viewer)
    client.post(f"/spaces/{space.slug}/gaps/{gap.pk}/dismiss/")
    gap.refresh_from_db()
    assert gap.status == "open"

    client.force_login(outsider)
    assert client.get(f"/spaces/{space.slug}/gaps/").status_code == 404


@pytest.mark.django_db
def test_usage_entries_of_deleted_tokens_and_records_are_still_written(space, owner):
    record = make_record(space=space, actor=owner, title="A")
    payload = {
        "created_at": timezone.now().isoformat(),
        "channel": "mcp",
        "operation": "search_context",
        "token_id": 999_999,
        "user_id": None,
        "tool": "claude-code 1.0",
        "query": "a",
        "paths": [],
        "space_ids": [space.pk],
        "results": [
            {"key": record.key, "record_id": record.pk, "score": 0.5},
            {"key": "DEC-999", "record_id": 999_999, "score": 0.1},
        ],
        "best_score": 0.9,
        "latency_ms": 3.2,
        "is_gap": False,
    }
    entry = services.usage_log_write(payload=payload)
    assert entry.token_id is None
    assert list(entry.items.values_list("record_id", flat=True)) == [record.pk]


def test_tools_report_gaps_over_rest_too(api, read_token, space, other_space):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_token[1]}")
    payload = {"query": "Which queue do refunds use?", "note": "no record", "space": "payments"}

    first = client.post(URL + "gaps/", payload, format="json")
    second = api.post(URL + "gaps/", {"query": "which queue do refunds use"}, format="json")

    assert first.status_code == 201, first.content  # a read-only token may report a gap
    assert first.json() == {
        "gaps": [{"space": "payments", "query": "Which queue do refunds use?", "count": 1}]
    }
    assert second.status_code == 201
    gap = Gap.objects.get(space=space)
    assert (gap.count, gap.source, gap.notes) == (2, "reported", ["no record"])

    for bad, status, field in (
        ({}, 400, "query"),
        ({"query": ""}, 400, "query"),
        ({"query": 5}, 400, "query"),
        ({"query": "x" * 2001}, 400, "query"),
        ({"query": "refunds", "note": 7}, 400, "note"),
        ({"query": "refunds\x00"}, 400, None),  # the JSON parser refuses NUL
        ({"query": "refunds", "space": "elsewhere"}, 404, None),  # not this token's space
        ({"query": "refunds", "space": "nope"}, 404, None),
    ):
        response = api.post(URL + "gaps/", bad, format="json")
        assert response.status_code == status, (bad, response.content)
        if field:
            assert field in response.json()["error"]["details"], bad
    assert Gap.objects.count() == 1
    assert APIClient().post(URL + "gaps/", payload, format="json").status_code == 401


def test_creating_a_record_from_a_gap_prefills_it_and_closes_the_gap(client, owner, space):
    services.gap_note(space_ids=[space.pk], query="Who decides refunds?", source="reported")
    gap = Gap.objects.get()
    client.force_login(owner)

    form = client.get(f"/s/{space.slug}/new/", {"title": gap.query, "gap": gap.pk})
    html = form.content.decode()
    assert 'value="Who decides refunds?"' in html  # the title field, prefilled
    assert f'name="from_gap" value="{gap.pk}"' in html

    # The browser posts to the canonical URL (the script drops the query string): the gap id
    # travels in the form.
    response = client.post(
        f"/s/{space.slug}/new/",
        {
            "kind": "decision",
            "title": "Refunds are decided by support leads",
            "status": "draft",
            "body": "",
            "from_gap": gap.pk,
        },
    )
    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.status == "answered"
    assert gap.answered_by.title == "Refunds are decided by support leads"
    page = client.get(f"/spaces/{space.slug}/gaps/").content.decode()
    assert f'id="gap-{gap.pk}"' not in page

    # The same question asked again opens a new gap (the record may not answer it after all).
    services.gap_note(space_ids=[space.pk], query="Who decides refunds?", source="reported")
    assert Gap.objects.filter(status="open").count() == 1


def test_a_gap_of_another_space_is_not_closed(client, owner, space, other_space):
    services.gap_note(space_ids=[other_space.pk], query="Elsewhere question", source="reported")
    elsewhere = Gap.objects.get()
    client.force_login(owner)
    client.post(
        f"/s/{space.slug}/new/",
        {
            "kind": "decision",
            "title": "Unrelated",
            "status": "draft",
            "body": "",
            "from_gap": elsewhere.pk,
        },
    )
    elsewhere.refresh_from_db()
    assert elsewhere.status == "open"


def test_a_short_query_whose_words_a_record_has_is_not_a_gap(api, add, usage_log):
    add("Retry failed webhooks with exponential backoff", summary="Up to 8 attempts.")

    # One word: its embedding is a poor match for any record, but the record has the word.
    body = api.get(URL, {"q": "retry"}).json()

    assert [i["key"] for i in body["items"]] == ["DEC-1"]
    assert not Gap.objects.exists()
    assert not ContextRequest.objects.get().is_gap


def test_usage_log_entries_past_retention_are_pruned_nightly_and_recent_ones_kept(
    api, add, usage_log, settings
):
    from django.conf import settings as django_settings

    from apps.retrieval import tasks

    record = add("Payments use idempotency keys")
    for _ in range(2):
        api.get(URL, {"q": "idempotency keys"})
    old, recent = ContextRequest.objects.order_by("pk")
    now = timezone.now()
    ContextRequest.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=200))
    ContextRequest.objects.filter(pk=recent.pk).update(created_at=now - dt.timedelta(days=100))
    assert selectors.record_usage(record_ids=[record.pk])[record.pk].fetches == 2

    settings.CONTEXTKB_USAGE_RETENTION_DAYS = 0  # keep forever
    assert tasks.prune_usage() == 0
    settings.CONTEXTKB_USAGE_RETENTION_DAYS = 180
    assert tasks.prune_usage() == 1

    assert list(ContextRequest.objects.values_list("pk", flat=True)) == [recent.pk]
    assert selectors.record_usage(record_ids=[record.pk])[record.pk].fetches == 1
    entry = django_settings.CELERY_BEAT_SCHEDULE["usage-prune"]
    assert entry["task"] == tasks.prune_usage.name and entry["options"]["expires"]

"""The API refuses a deactivated owner, and shows freshness derived from the record's dates
(and so does the context bundle), whether or not the sweep has run."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.records.models import Record
from tests.api.conftest import bearer
from tests.factories import MembershipFactory, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(space, owner):
    return make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never log card numbers",
        owner_user=owner,
        anchors=["services/payments/**"],
        status="accepted",
    )


def test_a_deactivated_user_is_refused_as_owner(api, rw_token, space, owner, record):
    gone = MembershipFactory(space=space, user__username="gone").user
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    url = f"/api/v1/records/{record.pk}/"
    response = api.patch(
        url, {"owner_user": "gone"}, format="json", HTTP_IF_MATCH='"1"', **bearer(rw_token)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "deactivated" in error["details"]["owner_user"][0]
    record.refresh_from_db()
    assert (record.owner_user, record.version, record.freshness) == (owner, 1, "unverified")
    created = api.post(
        "/api/v1/records/",
        {"space": "payments", "kind": "decision", "title": "X", "owner_user": "gone"},
        format="json",
        **bearer(rw_token),
    )
    assert created.status_code == 400
    assert not Record.objects.filter(title="X").exists()


def test_api_and_context_show_the_derived_state_before_any_sweep(api, rw_token, record):
    Record.objects.filter(pk=record.pk).update(
        next_review_at=timezone.now() - dt.timedelta(days=10)
    )
    body = api.get(f"/api/v1/records/{record.pk}/", **bearer(rw_token)).json()
    assert body["freshness"] == "stale"
    listed = api.get("/api/v1/records/?freshness=stale", **bearer(rw_token)).json()
    assert [r["key"] for r in listed["results"]] == [record.key]
    assert api.get("/api/v1/records/?freshness=fresh", **bearer(rw_token)).json()["results"] == []
    context = api.post(
        "/api/v1/context/",
        {"paths": ["services/payments/api.py"], "spaces": ["payments"], "include_stale": True},
        format="json",
        **bearer(rw_token),
    ).json()
    [item] = [i for i in context["items"] if i["key"] == record.key]
    assert item["freshness"] == "stale"
    due = (timezone.now() - dt.timedelta(days=10)).date()
    assert any(f"Its review was due on {due:%Y-%m-%d}" in r for r in item["freshness_reasons"])

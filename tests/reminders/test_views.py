import datetime as dt

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders.models import DriftReport, HealthSnapshot
from tests.factories import make_record

pytestmark = pytest.mark.django_db
BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def mixed(space, owner):
    """Two fresh records, one stale (owner's), one suspect orphan; snapshots for three days."""
    make_record(space=space, actor=owner, owner_user=owner, title="Fresh one")
    make_record(space=space, actor=owner, owner_user=owner, title="Fresh two")
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Old guardrail",
        now=timezone.now() - dt.timedelta(days=70),
    )
    make_record(space=space, actor=owner, title="Lost", anchors=["svc/"])
    reminders.drift_report(
        repository="acme/x", commit="c1", changed_paths=["svc/a.py", "ops/deploy.sh"], source="api"
    )
    reminders.sweep(full=True)
    today = timezone.localdate()
    for days_ago in (2, 1, 0):
        reminders.snapshot_health(day=today - dt.timedelta(days=days_ago))


def test_organisation_health_shows_shares_trend_owners_orphans_and_coverage(client, owner, mixed):
    client.force_login(owner, backend=BACKEND)
    page = client.get("/health")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Freshness of 4 records" in html
    assert "<td>Fresh</td><td>2</td><td>50%</td>" in html
    assert "<td>Stale</td><td>1</td><td>25%</td>" in html
    assert "<td>Suspect</td><td>1</td><td>25%</td>" in html
    assert "<svg" in html and html.count("<polyline") == 4
    assert "Lost" in html  # orphaned
    assert "<code>ops/deploy.sh</code>" in html  # changed, covered by no record
    main = html.split('id="main"')[1]
    assert "<script" not in main and " style=" not in main
    assert HealthSnapshot.objects.count() == 3


def test_health_pages_show_only_visible_spaces(client, outsider, mixed, space):
    client.force_login(outsider, backend=BACKEND)
    assert "Freshness of 0 records" in client.get("/health").content.decode()
    assert client.get(f"/spaces/{space.slug}/health").status_code == 404


def test_space_admin_changes_the_policy_and_review_dates_follow(client, space, owner, space_admin):
    created = timezone.now() - dt.timedelta(days=40)
    record = make_record(space=space, actor=owner, kind="constraint", now=created)
    client.force_login(space_admin, backend=BACKEND)
    page = client.get(f"/spaces/{space.slug}/health")
    assert 'name="interval__constraint" value="90"' in page.content.decode()

    form = {
        "due_window_days": "7",
        "escalation_days": "21",
        **{
            f"interval__{k}": v
            for k, v in {
                "decision__one_way__high": 60,
                "decision__one_way__medium": 90,
                "decision__one_way__low": 120,
                "decision__two_way": 180,
                "decision": 120,
                "constraint": 30,
                "intent": 120,
                "guardrail": 60,
            }.items()
        },
    }
    response = client.post(f"/spaces/{space.slug}/health", form)
    assert response.status_code == 302
    space.refresh_from_db()
    assert space.review_policy == {"constraint": 30}
    assert (space.due_window_days, space.escalation_days) == (7, 21)
    record = Record.objects.get(pk=record.pk)
    assert record.next_review_at == created + dt.timedelta(days=30)
    assert record.freshness == "stale"


def test_editors_cannot_change_the_policy_and_bad_values_change_nothing(
    client, space, owner, space_admin
):
    client.force_login(owner, backend=BACKEND)
    assert client.post(f"/spaces/{space.slug}/health", {"due_window_days": "1"}).status_code == 403
    client.force_login(space_admin, backend=BACKEND)
    bad = client.post(
        f"/spaces/{space.slug}/health", {"due_window_days": "-3", "escalation_days": "x"}
    )
    assert bad.status_code == 400
    space.refresh_from_db()
    assert (space.review_policy, space.due_window_days) == ({}, 14)


def test_review_queue_lists_own_records_and_verifies_in_one_click(client, owner, mixed):
    client.force_login(owner, backend=BACKEND)
    html = client.get("/review/").content.decode()
    assert "Old guardrail" in html and "Fresh one" not in html
    stale = Record.objects.get(title="Old guardrail")
    assert client.post(f"/review/{stale.pk}/verify").status_code == 302
    assert Record.objects.get(pk=stale.pk).freshness == "fresh"
    assert "Nothing to review" in client.get("/review/").content.decode()


def test_user_changes_digest_frequency(client, owner):
    client.force_login(owner, backend=BACKEND)
    assert client.get("/settings/reminders/").status_code == 200
    assert client.post("/settings/reminders/", {"digest_frequency": "weekly"}).status_code == 302
    assert User.objects.get(pk=owner.pk).digest_frequency == "weekly"
    assert client.post("/settings/reminders/", {"digest_frequency": "hourly"}).status_code == 200
    assert User.objects.get(pk=owner.pk).digest_frequency == "weekly"


def test_dashboard_pages_need_login(client, space):
    for url in ("/health", f"/spaces/{space.slug}/health", "/review/", "/settings/reminders/"):
        assert client.get(url).status_code == 302
    assert not DriftReport.objects.exists()


def test_most_used_stale_records_and_open_gaps_come_from_the_retrieval_log(
    client, owner, mixed, space
):
    from apps.retrieval.models import ContextRequest, ContextResult, Gap

    stale = Record.objects.get(title="Old guardrail")
    fresh = Record.objects.get(title="Fresh one")
    request = ContextRequest.objects.create(
        channel="api", operation="context", query="logging rules", latency_ms=5.0
    )
    for rank in range(3):
        ContextResult.objects.create(request=request, record=stale, rank=rank + 1, score=0.9)
    ContextResult.objects.create(request=request, record=fresh, rank=4, score=0.5)
    Gap.objects.create(
        space=space,
        query="how do we rotate keys?",
        normalized="keys rotate",
        source="low_score",
        count=4,
    )

    client.force_login(owner, backend=BACKEND)
    html = client.get(f"/spaces/{space.slug}/health").content.decode()
    used = html.split('id="used-h"')[1].split("</section>")[0]
    assert "Old guardrail" in used and "used 3 times" in used
    assert "Fresh one" not in used
    gaps = html.split('id="gaps-h"')[1].split("</section>")[0]
    assert "how do we rotate keys?" in gaps and "<td>4</td>" in gaps

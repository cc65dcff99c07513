import datetime as dt
import re

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.records import services as record_services
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.reminders.models import DriftReport, HealthSnapshot
from tests.factories import make_record

pytestmark = pytest.mark.django_db
BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def mixed(space, owner):
    """One fresh (verified) record, one not yet verified, one stale (owner's), one suspect
    orphan; snapshots for three days."""
    fresh = make_record(space=space, actor=owner, owner_user=owner, title="Fresh one")
    record_services.record_verify(record=fresh, actor=owner)
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


def _section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


def test_organisation_health_shows_shares_trend_owners_orphans_and_coverage(client, owner, mixed):
    client.force_login(owner, backend=BACKEND)
    page = client.get("/health")
    html = page.content.decode()
    assert page.status_code == 200
    shares = _section(html, "shares-h")
    assert "Freshness of 4 records" in shares
    rows = re.findall(
        r'<tr class="freshness-(\w+)">.*?<td class="num">(\d+)</td><td class="num">(\d+)%', shares
    )
    assert rows == [
        ("fresh", "1", "25"),
        ("unverified", "1", "25"),
        ("due", "0", "0"),
        ("stale", "1", "25"),
        ("suspect", "1", "25"),
    ]
    # The one-line bar: fresh 0-25%, not yet verified 25-50%, stale 50-75%, suspect 75-100%
    # (no empty segment).
    assert re.findall(r'<rect class="area-(\w+)" x="([\d.]+)" y="0" width="([\d.]+)"', shares) == [
        ("fresh", "0", "25"),
        ("unverified", "25", "25"),
        ("stale", "50", "25"),
        ("suspect", "75", "25"),
    ]
    trend = _section(html, "trend-h")
    # Three daily snapshots of 4 records: y axis 0..4, four stacked areas, 12 week labels.
    assert re.findall(r'dominant-baseline="middle">(\d+)</text>', trend) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    assert trend.count('<polygon class="area area-') == 4
    assert len(re.findall(r"<ol class=\"trend-x\".*?</ol>", trend, re.S)[0].split("<li>")) == 13
    # The snapshots count the never-verified record with the fresh one, and say so.
    assert (
        "<strong>Fresh or not yet verified</strong> 2" in trend
        and "<strong>Suspect</strong> 1" in trend
    )
    owners = _section(html, "owners-h")
    assert owner.display_name in owners
    assert "Lost" in _section(html, "orphans-h")
    coverage = _section(html, "coverage-h")
    assert "<code>ops/deploy.sh</code>" in coverage and "svc/a.py" not in coverage
    main = html.split('id="main"')[1]
    assert "<script" not in main and " style=" not in main
    assert HealthSnapshot.objects.count() == 3


def test_a_path_covered_after_its_drift_report_leaves_the_coverage_list(
    client, owner, mixed, space
):
    make_record(space=space, actor=owner, anchors=["ops/**"])
    client.force_login(owner, backend=BACKEND)
    coverage = _section(client.get("/health").content.decode(), "coverage-h")
    assert "ops/deploy.sh" not in coverage


def test_space_health_links_each_figure_to_the_matching_records(client, owner, mixed, space):
    client.force_login(owner, backend=BACKEND)
    html = client.get(f"/spaces/{space.slug}/health").content.decode()
    assert f'href="/s/{space.slug}/?freshness=stale">Stale</a>' in html
    assert f'href="/s/{space.slug}/?owner=u:{owner.pk}&amp;freshness=attention"' in html
    # The org-wide coverage list is on /health only.
    assert 'id="coverage-h"' not in html
    listed = client.get(f"/s/{space.slug}/?owner=u:{owner.pk}&freshness=attention")
    assert "Old guardrail" in listed.content.decode()


def test_health_page_queries_do_not_grow_with_the_number_of_records(
    client, owner, space, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count():
        client.force_login(owner, backend=BACKEND)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/spaces/{space.slug}/health").status_code == 200
        return len(ctx.captured_queries)

    old = timezone.now() - dt.timedelta(days=100)
    for i in range(3):
        make_record(space=space, actor=owner, owner_user=owner, kind="guardrail", now=old)
        make_record(space=space, actor=owner, title=f"Orphan {i}")
    reminders.sweep(full=True)
    few = count()
    for i in range(15):
        make_record(space=space, actor=owner, owner_user=owner, kind="guardrail", now=old)
        make_record(space=space, actor=owner, title=f"More orphans {i}")
    reminders.sweep(full=True)
    assert count() == few
    with django_assert_max_num_queries(few):
        client.get(f"/spaces/{space.slug}/health")


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
    assert '<td>how do we rotate keys?</td><td class="num">4</td>' in gaps


# --- review queue: orphans for admins ----------------------------------------------------------


@pytest.fixture
def orphaned(space, owner, teammate, space_admin):
    """A record whose owner left the space: it is in the admins' queue."""
    from apps.accounts import services as account_services

    record = make_record(space=space, actor=owner, owner_user=owner, title="Left behind")
    account_services.membership_remove(space=space, user=owner, actor=space_admin)
    return Record.objects.get(pk=record.pk)


def test_space_admin_sees_orphans_and_assigns_one_from_the_queue(
    client, space_admin, teammate, orphaned
):
    client.force_login(space_admin, backend=BACKEND)
    html = client.get("/review/").content.decode()
    orphans = html.split('id="orphans"')[1]
    assert "Left behind" in orphans and "Its owner owner left the space" in orphans
    assert f'<option value="{teammate.pk}">' in orphans

    response = client.post(
        f"/review/{orphaned.pk}/assign",
        {"owner": teammate.pk, "version": orphaned.version},
        follow=True,
    )
    assert f"{orphaned.key} is now owned by {teammate.display_name}." in response.content.decode()
    record = Record.objects.get(pk=orphaned.pk)
    assert record.owner_user == teammate
    # The owner-left reason is resolved; nothing else was open, so it is no longer suspect (and
    # not fresh: nobody has verified it yet).
    assert record.freshness == "unverified"
    assert "Left behind" not in client.get("/review/").content.decode()
    assert record.revisions.order_by("-number").first().message == (
        "Owner assigned from the review queue"
    )


def test_assigning_from_a_stale_queue_page_changes_nothing(
    client, space, space_admin, teammate, orphaned
):
    from apps.records import services as record_services

    record_services.record_update(
        record=orphaned,
        actor=space_admin,
        expected_version=orphaned.version,
        changes={"body": "Meanwhile edited"},
    )
    client.force_login(space_admin, backend=BACKEND)
    response = client.post(
        f"/review/{orphaned.pk}/assign",
        {"owner": teammate.pk, "version": orphaned.version},
        follow=True,
    )
    assert "was changed by someone else meanwhile; nothing was saved" in response.content.decode()
    assert Record.objects.get(pk=orphaned.pk).owner_user is None


@pytest.mark.parametrize(
    "form",
    [{"owner": "", "version": "1"}, {"owner": "999999", "version": "1"}, {"owner": "x"}, {}],
    ids=["no-owner", "unknown-user", "garbage", "empty"],
)
def test_assigning_to_nobody_or_an_outsider_is_refused(client, space_admin, orphaned, form):
    client.force_login(space_admin, backend=BACKEND)
    response = client.post(f"/review/{orphaned.pk}/assign", form, follow=True)
    assert response.status_code == 200
    assert "was not assigned: choose a member of the space" in response.content.decode()
    assert Record.objects.get(pk=orphaned.pk).owner_user is None


def test_assigning_a_non_member_or_from_outside_the_space_is_refused(
    client, space_admin, orphaned, outsider
):
    client.force_login(space_admin, backend=BACKEND)
    client.post(f"/review/{orphaned.pk}/assign", {"owner": outsider.pk, "version": 2})
    assert Record.objects.get(pk=orphaned.pk).owner_user is None
    client.force_login(outsider, backend=BACKEND)
    assert client.post(f"/review/{orphaned.pk}/assign", {"owner": outsider.pk}).status_code == 404


def test_not_mine_from_the_queue_hands_the_record_to_the_admins(client, space, owner):
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Not really mine",
        now=timezone.now() - dt.timedelta(days=70),
    )
    reminders.sweep(full=True)
    client.force_login(owner, backend=BACKEND)
    assert "Not really mine" in client.get("/review/").content.decode()
    response = client.post(f"/review/{record.pk}/not-mine", follow=True)
    assert f"{record.key} went back to the admins of Payments." in response.content.decode()
    assert Record.objects.get(pk=record.pk).owner_user is None
    again = client.post(f"/review/{record.pk}/not-mine", follow=True)
    assert f"You do not own {record.key}; nothing was changed." in again.content.decode()


def test_coverage_shows_a_token_report_only_to_members_of_its_spaces(
    client, owner, space, outsider, other_space
):
    """Paths from a drift report made with a token for one space are not shown to people of
    other spaces; paths from the organisation's webhook or command are shown to everyone."""
    reminders.drift_report(
        repository="acme/secret-project",
        commit="aaa111",
        changed_paths=["secret/plan.py"],
        source="api",
        actor=owner,
    )
    reminders.drift_report(
        repository="acme/shared", commit="bbb222", changed_paths=["shared/lib.py"], source="github"
    )
    client.force_login(owner, backend=BACKEND)
    mine = _section(client.get("/health").content.decode(), "coverage-h")
    assert "secret/plan.py" in mine and "shared/lib.py" in mine
    client.force_login(outsider, backend=BACKEND)
    theirs = _section(client.get("/health").content.decode(), "coverage-h")
    assert "shared/lib.py" in theirs
    assert "secret/plan.py" not in theirs

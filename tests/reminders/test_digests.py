import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from apps.accounts.models import User
from apps.records import services
from apps.records.models import Record
from apps.reminders import selectors, tasks
from apps.reminders import services as reminders
from apps.reminders.models import Delivery
from tests.factories import make_record

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/r/[a-z-]+/[^/\s\"]+/)")


@pytest.fixture
def stale_records(space, owner):
    """Three of owner's records, 100 days after creation: two stale guardrails (one used), one
    suspect decision; plus a fresh two-way decision that must not be listed."""
    start = timezone.now() - dt.timedelta(days=100)
    high = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="No PII in logs",
        now=start,
    )
    low = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="intent",
        title="Self-serve first",
        now=start - dt.timedelta(days=30),
    )
    fresh = make_record(
        space=space, actor=owner, owner_user=owner, reversibility="two_way", title="Use htmx"
    )
    reminders.sweep(full=True)
    return high, low, fresh


def _send_planned():
    """Run the beat task and then every send task it queued (the worker's job, done inline)."""
    ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: ids.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    return [tasks.send_delivery.run(pk) for pk in ids]


def test_digest_lists_records_most_urgent_first_with_reasons(space, owner, stale_records):
    high, low, fresh = stale_records
    groups = selectors.digest_items(user=owner)
    [group] = groups
    keys = [item.record.key for item in group.items]
    # guardrail: weight 3 x (1 + 40 days) = 123; intent: weight 1 x (1 + 10 days) = 11.
    assert keys == [high.key, low.key]
    assert fresh.key not in keys
    assert group.items[0].score == 3 * (1 + 40)


def test_usage_counts_raise_urgency(space, owner, stale_records, monkeypatch):
    high, low, _ = stale_records
    from apps.reminders import usage

    # 21 x 11 = 231 now beats the guardrail's 123.
    monkeypatch.setattr(usage, "usage_counts", lambda ids, since=None: {low.pk: 20})
    [group] = selectors.digest_items(user=owner)
    assert [item.record.key for item in group.items] == [low.key, high.key]


def test_digest_email_has_both_parts_links_and_unsubscribe_header(space, owner, stale_records):
    high, _low, _ = stale_records
    results = _send_planned()

    assert results == ["sent"]
    [message] = mail.outbox
    assert message.to == [owner.email]
    assert message.subject.startswith("2 records to review")
    html = message.alternatives[0].content
    assert message.alternatives[0].mimetype == "text/html"
    for part in (message.body, html):
        assert "No PII in logs" in part and "Self-serve first" in part
        assert "Payments" in part
        assert "Still true" in part and "Not mine" in part
        assert f"/s/payments/{high.key}/edit/" in part
    assert message.extra_headers["List-Unsubscribe"].startswith("<http://testserver/r/unsubscribe/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.item_count, delivery.attempts) == ("sent", 2, 1)


def test_beat_task_twice_and_a_redelivered_send_task_send_one_digest(space, owner, stale_records):
    _send_planned()
    assert _send_planned() == []
    delivery = Delivery.objects.get()
    assert tasks.send_delivery.run(delivery.pk) == "not claimed"
    assert len(mail.outbox) == 1


def test_planning_the_same_period_twice_creates_one_row(space, owner, stale_records):
    period = timezone.localdate().isoformat()
    first = reminders.delivery_plan(user_ids=[owner.pk], kind="digest", period=period)
    second = reminders.delivery_plan(user_ids=[owner.pk], kind="digest", period=period)
    assert len(first) == 1 and second == []


def test_weekly_and_off_frequencies(space, owner, stale_records):
    User.objects.filter(pk=owner.pk).update(digest_frequency="off")
    assert _send_planned() == []
    User.objects.filter(pk=owner.pk).update(digest_frequency="weekly")
    assert _send_planned() == ["sent"]
    year, week, _ = timezone.localdate().isocalendar()
    assert Delivery.objects.get().period == f"{year}-W{week:02d}"


def test_no_digest_before_the_send_hour(space, owner, stale_records, settings):
    settings.REMINDERS_DIGEST_HOUR = 24
    assert _send_planned() == []
    assert not Delivery.objects.exists()


def test_failed_sends_retry_with_backoff_then_give_up(space, owner, stale_records, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "use_tls": False, "timeout": 2},
        }
    }
    [delivery_id] = reminders.delivery_plan(
        user_ids=[owner.pk], kind="digest", period=timezone.localdate().isoformat()
    )
    # apply() runs the task here, retries included (countdowns are not waited for locally).
    tasks.send_delivery.apply(args=[delivery_id])
    delivery = Delivery.objects.get()
    assert delivery.status == "gave_up"
    assert delivery.attempts == tasks.MAX_SEND_RETRIES + 1
    assert "ConnectionRefusedError" in delivery.last_error
    assert delivery.sent_at is None


def test_escalation_digest_goes_to_space_admins_weekly(space, owner, space_admin):
    start = timezone.now() - dt.timedelta(days=200)
    long_stale = make_record(
        space=space, actor=owner, owner_user=owner, kind="guardrail", title="Old", now=start
    )
    orphan = make_record(space=space, actor=owner, title="Nobody's")
    services.record_link(source=orphan, target=long_stale, type="depends_on", actor=owner)
    services.record_update(
        record=long_stale, actor=space_admin, expected_version=1, changes={"body": "x"}
    )
    reminders.sweep(full=True)
    groups = selectors.escalation_items(user=space_admin)
    assert {i.record.key for g in groups for i in g.items} == {long_stale.key, orphan.key}
    _send_planned()
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects[space_admin.email] == "2 records stale too long or without an owner in Payments"
    message = next(m for m in mail.outbox if m.to == [space_admin.email])
    html = message.alternatives[0].content
    assert f"{long_stale.key} Old [stale, {owner.display_name}" in message.body
    assert f"{orphan.key} Nobody's [suspect, NO OWNER]" in message.body
    assert "Assign owners: http://testserver/review/#orphans" in message.body
    assert 'href="http://testserver/review/#orphans"' in html and "no owner" in html
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- one-click links --------------------------------------------------------------------------


def _links(client_message):
    return LINK.findall(client_message.body)


def test_still_true_link_verifies_once_without_login(client, space, owner, stale_records):
    high, _, _ = stale_records
    _send_planned()
    still_true = next(link for link in _links(mail.outbox[0]) if "still-true" in link)

    page = client.get(still_true)
    assert page.status_code == 200
    assert b"Yes, it is still true" in page.content
    assert Record.objects.get(pk=high.pk).freshness == "stale"  # a GET changes nothing

    done = client.post(still_true)
    assert done.status_code == 200
    assert Record.objects.get(pk=high.pk).freshness == "fresh"
    assert high.verifications.get().actor == owner

    again = client.post(still_true)
    assert again.status_code == 410
    assert b"already used" in again.content


def test_tampered_and_expired_links_get_a_clear_page(client, space, owner, stale_records):
    _send_planned()
    still_true = next(link for link in _links(mail.outbox[0]) if "still-true" in link)
    tampered = still_true[:-5] + ("A" if still_true[-5] != "A" else "B") + still_true[-4:]
    page = client.get(tampered)
    assert page.status_code == 400
    assert b"This link is not valid" in page.content

    with time_machine.travel(timezone.now() + dt.timedelta(days=15)):
        page = client.post(still_true)
    assert page.status_code == 410
    assert b"This link has expired" in page.content


def test_not_mine_link_returns_the_record_to_the_space_admins(
    client, space, owner, space_admin, stale_records
):
    high, _, _ = stale_records
    _send_planned()
    [digest] = [m for m in mail.outbox if m.to == [owner.email]]
    not_mine = next(link for link in _links(digest) if "not-mine" in link)
    assert client.post(not_mine).status_code == 200
    record = Record.objects.get(pk=high.pk)
    assert record.owner_user is None
    assert record.freshness == "suspect"
    queue = selectors.review_queue(user=space_admin)
    assert high.key in [item.record.key for g in queue["orphans"] for item in g.items]


def test_unsubscribe_page_turns_digests_off(client, space, owner, stale_records):
    _send_planned()
    url = (
        mail.outbox[0]
        .extra_headers["List-Unsubscribe"]
        .strip("<>")
        .removeprefix("http://testserver")
    )
    assert b"Stop reminder emails?" in client.get(url).content
    assert client.post(url).status_code == 200
    assert User.objects.get(pk=owner.pk).digest_frequency == "off"
    assert client.get(url[:-3] + "xyz/").status_code == 400


def _claimed_and_abandoned(owner) -> Delivery:
    """A delivery a worker claimed and then died on (killed before the SMTP server took it)."""
    [delivery_id] = reminders.delivery_plan(
        user_ids=[owner.pk], kind="digest", period=timezone.localdate().isoformat()
    )
    assert reminders.delivery_claim(delivery_id=delivery_id) is not None
    return Delivery.objects.get(pk=delivery_id)


def test_a_send_interrupted_inside_its_lease_is_left_alone(space, owner, stale_records, settings):
    settings.REMINDERS_SEND_LEASE_SECONDS = 60
    stuck = _claimed_and_abandoned(owner)
    # The broker redelivers the unacknowledged task to another worker: nothing to claim.
    assert tasks.send_delivery.run(stuck.pk) == "not claimed"
    with time_machine.travel(stuck.claimed_at + dt.timedelta(seconds=55)):
        assert _send_planned() == []
    assert mail.outbox == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sending", 1)


def test_a_send_stuck_past_its_lease_is_resent_once_by_overlapping_planners(
    space, owner, stale_records, settings
):
    settings.REMINDERS_SEND_LEASE_SECONDS = 60
    stuck = _claimed_and_abandoned(owner)
    expected_id = stuck.message_id
    # From "contextkb <contextkb@localhost>": the row's kind, period, user and id.
    assert expected_id == f"<contextkb.digest.{stuck.period}.u{owner.pk}.d{stuck.pk}@localhost>"

    queued = []
    with time_machine.travel(stuck.claimed_at + dt.timedelta(seconds=61)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
            # Two beat processes plan at the same time: both run before any send task does.
            with TestCase.captureOnCommitCallbacks(execute=True):
                tasks.plan_digests()
            with TestCase.captureOnCommitCallbacks(execute=True):
                tasks.plan_digests()
        # The first planner re-queued the row; the second found nothing left to re-claim.
        assert reminders.delivery_reclaim_stuck(periods=[stuck.period]) == []
        assert "did not finish within the lease" in Delivery.objects.get().last_error
        results = [tasks.send_delivery.run(pk) for pk in queued]
    assert queued == [stuck.pk, stuck.pk]
    assert sorted(results) == ["not claimed", "sent"]
    [message] = mail.outbox
    assert message.to == [owner.email]
    assert message.extra_headers["Message-ID"] == expected_id
    assert message.message()["Message-ID"] == expected_id
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.message_id == expected_id


def test_team_owned_records_reach_every_team_member(client, space, owner, teammate):
    from tests.factories import TeamFactory

    team = TeamFactory(name="Platform")
    team.members.add(owner, teammate)
    record = make_record(
        space=space,
        actor=owner,
        owner_team=team,
        kind="guardrail",
        title="Pin base images",
        now=timezone.now() - dt.timedelta(days=70),
    )
    reminders.sweep(full=True)
    _send_planned()

    assert sorted(m.to[0] for m in mail.outbox) == sorted([owner.email, teammate.email])
    message = next(m for m in mail.outbox if m.to == [teammate.email])
    assert "Pin base images" in message.body and "(owned by Platform)" in message.body
    assert "not-mine" not in message.body
    still_true = next(link for link in _links(message) if "still-true" in link)
    assert client.post(still_true).status_code == 200
    assert Record.objects.get(pk=record.pk).freshness == "fresh"


def test_a_lease_not_above_the_task_time_limit_is_flagged_by_check(settings):
    from apps.reminders.checks import send_lease_above_time_limit

    settings.CELERY_TASK_TIME_LIMIT = 300
    settings.REMINDERS_SEND_LEASE_SECONDS = 360
    assert send_lease_above_time_limit() == []
    settings.REMINDERS_SEND_LEASE_SECONDS = 300
    [warning] = send_lease_above_time_limit()
    assert warning.id == "reminders.W001"


# --- long lists, ranking at scale, the wire format ------------------------------------------------


def test_a_digest_lists_the_25_most_urgent_and_counts_the_rest(space, owner):
    start = timezone.now() - dt.timedelta(days=200)
    for i in range(30):
        # Older records have been stale longer, so they rank first.
        make_record(
            space=space,
            actor=owner,
            owner_user=owner,
            kind="constraint",
            title=f"Rule {i:02d}",
            now=start + dt.timedelta(days=i),
        )
    reminders.sweep(full=True)

    assert _send_planned() == ["sent"]
    [message] = mail.outbox
    assert message.subject.startswith("30 records to review — CON-1 Rule 00")
    assert message.body.count("Still true: ") == 25
    assert "Rule 24" in message.body and "Rule 25" not in message.body
    assert "And 5 more in Payments: http://testserver/review/" in message.body
    html = message.alternatives[0].content
    assert html.count(">&#10003;&nbsp;Still true</a>") == 25
    assert "And 5 more in Payments" in html
    assert Delivery.objects.get().item_count == 30


def test_ranking_past_the_sql_prefilter_still_puts_the_most_urgent_first(space, owner, monkeypatch):
    now = timezone.now()
    low = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="intent",
        title="Old intent",
        now=now - dt.timedelta(days=300),
    )  # weight 1 x (1 + 180 days) = 181
    high = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Guardrail",
        now=now - dt.timedelta(days=130),
    )  # weight 3 x (1 + 70 days) = 213
    mid = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="constraint",
        title="Constraint",
        now=now - dt.timedelta(days=150),
    )  # weight 2 x (1 + 60 days) = 122
    fresh_suspect = make_record(
        space=space, actor=owner, owner_user=owner, kind="guardrail", anchors=["a/**"]
    )  # suspect today: weight 3 x (1 + 0) = 3
    reminders.drift_report(repository="r", commit="c1", changed_paths=["a/b"], source="api")
    reminders.sweep(full=True)
    # State first (the suspect one, however new), then impact x days among the stale ones.
    expected = [fresh_suspect.key, high.key, low.key, mid.key]

    [exact] = selectors.digest_items(user=owner, now=now)
    assert [i.record.key for i in exact.items] == expected
    assert [i.score for i in exact.items] == [3, 213, 181, 122]

    # With more records than the prefilter keeps, SQL picks the candidates by the same
    # state, then impact x days score: the top two are the same two.
    monkeypatch.setattr(selectors.ranking, "RANK_CANDIDATES", 2)
    [group] = selectors.digest_items(user=owner, now=now)
    assert [i.record.key for i in group.items] == expected[:2]
    assert (group.total, group.more) == (4, 2)


def test_list_unsubscribe_goes_out_unencoded_on_the_wire(space, owner, stale_records):
    _send_planned()
    raw = mail.outbox[0].message().as_bytes().decode()
    [line] = [h for h in raw.splitlines() if h.startswith("List-Unsubscribe:")]
    assert re.fullmatch(r"List-Unsubscribe: <http://testserver/r/unsubscribe/[^\s>]+/>", line)
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_unsubscribe_one_click_post_from_a_mail_provider(client, space, owner, stale_records):
    _send_planned()
    url = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    # RFC 8058: the provider POSTs this exact body, without cookies or a CSRF token.
    response = client.post(
        url.removeprefix("http://testserver"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert User.objects.get(pk=owner.pk).digest_frequency == "off"
    assert _send_planned() == []


@pytest.mark.django_db(transaction=True)
def test_two_beats_planning_at_the_same_moment_send_one_digest(space, owner, stale_records):
    """Two beat processes fire plan_digests together (real concurrent transactions), and every
    send task they queue is delivered twice by the broker: the owner still gets one email."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(2)
    queued: list[int] = []
    errors: list[BaseException] = []

    def beat():
        try:
            barrier.wait(timeout=10)
            tasks.plan_digests()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    delivery = Delivery.objects.get()
    # Each planner may have queued the pending row; the claim lets one send through.
    assert set(queued) == {delivery.pk} and 1 <= len(queued) <= 2
    results = [tasks.send_delivery.run(pk) for pk in queued + queued]
    assert results.count("sent") == 1
    assert len(mail.outbox) == 1


def test_failed_deliveries_show_in_the_admin_and_can_be_sent_again_once(
    client, space, owner, stale_records
):
    from tests.factories import UserFactory

    [delivery_id] = reminders.delivery_plan(
        user_ids=[owner.pk], kind="digest", period=timezone.localdate().isoformat()
    )
    Delivery.objects.filter(pk=delivery_id).update(
        status="gave_up", attempts=6, last_error="SMTPServerDisconnected: Connection closed"
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    listing = client.get("/admin/reminders/delivery/?status__exact=gave_up").content.decode()
    assert "SMTPServerDisconnected: Connection closed" in listing
    assert "Failed (gave up)" in listing

    queued = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: queued.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            for _ in range(2):  # an impatient double click
                client.post(
                    "/admin/reminders/delivery/",
                    {"action": "send_again", "_selected_action": [delivery_id]},
                )
    assert queued == [delivery_id]
    assert [tasks.send_delivery.run(pk) for pk in queued + queued] == ["sent", "not claimed"]
    assert len(mail.outbox) == 1
    assert Delivery.objects.get().status == "sent"


def test_planner_picks_owners_and_team_members_who_belong_to_the_space(
    space, owner, teammate, outsider
):
    from tests.factories import TeamFactory

    team = TeamFactory(name="Platform")
    team.members.add(teammate, outsider)  # the outsider is not a member of Payments
    old = timezone.now() - dt.timedelta(days=100)
    make_record(space=space, actor=owner, owner_team=team, kind="guardrail", now=old)
    make_record(space=space, actor=owner, owner_user=owner, kind="guardrail")  # fresh
    reminders.sweep(full=True)

    assert selectors.users_with_digest_items(frequency="daily") == [teammate.pk]
    make_record(space=space, actor=owner, owner_user=owner, kind="guardrail", now=old)
    reminders.sweep(full=True)
    assert selectors.users_with_digest_items(frequency="daily") == sorted([owner.pk, teammate.pk])
    assert selectors.users_with_digest_items(frequency="weekly") == []


def test_hostile_titles_are_escaped_in_the_html_part_and_kept_plain_in_the_text(space, owner):
    title = '<img src=x onerror=alert(1)> "Quotes" & <b>bold</b>'
    make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title=title,
        now=timezone.now() - dt.timedelta(days=70),
    )
    reminders.sweep(full=True)
    assert _send_planned() == ["sent"]
    [message] = mail.outbox
    html = message.alternatives[0].content
    assert "<img src=x" not in html and "<b>bold</b>" not in html
    assert (
        "&lt;img src=x onerror=alert(1)&gt; &quot;Quotes&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"
        in html
    )
    assert title in message.body
    assert "\n" not in message.subject and title in message.subject

"""The one-click links of a digest, followed after things changed: a record handed back with
"Not mine", and "Still true" on a record whose valid-until date has passed."""

import datetime as dt
import re

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.records.models import Record, SuspectReason
from apps.reminders import selectors, tasks
from apps.reminders import services as reminders
from tests.factories import make_record

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/r/[a-z-]+/[^/\s\"]+/)")


def _digest_links(smtp_inbox) -> dict[str, str]:
    """Run the beat and the send; the "still-true" and "not-mine" links of the one record in
    the digest the SMTP sink received."""
    ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: ids.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    assert [tasks.send_delivery.run(pk) for pk in ids] == ["sent"]
    text, _ = smtp_inbox.parts(smtp_inbox.messages[-1])
    links = LINK.findall(text)
    return {
        "still_true": next(link for link in links if "still-true" in link),
        "not_mine": next(link for link in links if "not-mine" in link),
    }


@pytest.fixture
def expired(space, owner):
    """A constraint owned by `owner` whose valid-until date passed a week ago (the hourly sweep
    has flagged it)."""
    record = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="constraint",
        title="EU data stays in Frankfurt",
        valid_until=timezone.localdate() - dt.timedelta(days=7),
    )
    reminders.sweep()
    assert Record.objects.get(pk=record.pk).freshness == "suspect"
    return record


def test_after_not_mine_the_old_still_true_link_says_at_once_it_is_not_yours(
    client, space, owner, space_admin, expired, smtp_inbox
):
    links = _digest_links(smtp_inbox)
    assert client.post(links["not_mine"]).status_code == 200
    page = client.get(links["still_true"])
    # No "Yes" button that would then fail: the page says so straight away.
    assert page.status_code == 403
    body = page.content.decode()
    assert "This record is no longer yours" in body
    assert "Yes, it is still true" not in body
    assert client.post(links["still_true"]).status_code == 403
    assert not expired.verifications.exists()


def test_still_true_on_a_passed_valid_until_clears_it_and_says_so(
    client, space, owner, expired, smtp_inbox
):
    old_date = expired.valid_until
    links = _digest_links(smtp_inbox)
    page = client.get(links["still_true"]).content.decode()
    assert "has passed" in page and 'name="valid_until"' in page
    done = client.post(links["still_true"], {"valid_until": ""})
    assert done.status_code == 200
    body = done.content.decode()
    assert "so it was <strong>cleared</strong>" in body
    record = Record.objects.get(pk=expired.pk)
    assert record.valid_until is None and record.freshness == "fresh"
    revision = record.revisions.first()
    assert revision.author == owner
    assert f"passed valid-until date ({old_date:%Y-%m-%d}) cleared" in revision.message
    # The hourly sweep does not flag it again, and the next digest has nothing for the owner.
    reminders.sweep()
    reminders.sweep(full=True)
    assert Record.objects.get(pk=expired.pk).freshness == "fresh"
    assert not SuspectReason.objects.filter(record=expired, resolved_at__isnull=True).exists()
    assert selectors.digest_items(user=owner) == []


def test_still_true_with_a_new_valid_until_extends_it(client, space, owner, expired, smtp_inbox):
    links = _digest_links(smtp_inbox)
    later = timezone.localdate() + dt.timedelta(days=90)
    # A date already past is refused, and the link still works afterwards.
    refused = client.post(links["still_true"], {"valid_until": "2020-01-01"})
    assert refused.status_code == 400
    assert "must be after today" in refused.content.decode()
    assert Record.objects.get(pk=expired.pk).freshness == "suspect"
    done = client.post(links["still_true"], {"valid_until": later.isoformat()})
    assert done.status_code == 200
    assert f"valid until {later:%-d %B %Y}" in done.content.decode()
    record = Record.objects.get(pk=expired.pk)
    assert (record.valid_until, record.freshness) == (later, "fresh")
    reminders.sweep()
    assert Record.objects.get(pk=expired.pk).freshness == "fresh"


def test_still_true_on_the_record_page_clears_a_passed_valid_until_and_says_so(
    client, space, owner, expired
):
    old_date = expired.valid_until
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        f"/s/{space.slug}/{expired.key}/verify/", {"outcome": "still_true"}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any(
        f"Its valid-until date ({old_date:%d %b %Y}) had passed, so it was cleared" in m
        for m in messages
    )
    reminders.sweep()
    assert Record.objects.get(pk=expired.pk).freshness == "fresh"

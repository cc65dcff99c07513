"""What an owner does from a reminder: one-click actions (each link used once), handing a
record back, and their digest preference."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.core.errors import InvalidInput
from apps.records import evidence
from apps.records import services as record_services
from apps.records.models import Record, Verification
from apps.reminders.models import UsedLink


def use_link(*, nonce: str, action: str, record_id: int | None, user: User | None) -> bool:
    """Claim a single-use link; False when it was used before."""
    try:
        with transaction.atomic():
            UsedLink.objects.create(nonce=nonce, action=action, record_id=record_id, user=user)
    except IntegrityError:
        return False
    return True


@transaction.atomic
def link_still_true(
    *, record: Record, user: User, nonce: str, valid_until=None
) -> Verification | None:
    """ "Still true" from an email: verify as `user`. None when the link was used before.
    `valid_until`: the new date when the record's valid-until date has passed (see
    `record_verify`); a refused verification leaves the link unused."""
    if not use_link(nonce=nonce, action="verify", record_id=record.pk, user=user):
        return None
    return record_services.record_verify(
        record=record,
        actor=user,
        note="Still true (from the reminder email)",
        valid_until=valid_until,
    )


@transaction.atomic
def link_not_mine(*, record: Record, user: User, nonce: str) -> bool | None:
    """ "Not mine" from an email. None when the link was used before; else as `not_mine`."""
    if not use_link(nonce=nonce, action="not_mine", record_id=record.pk, user=user):
        return None
    return not_mine(record=record, user=user)


@transaction.atomic
def not_mine(*, record: Record, user: User) -> bool:
    """The owner hands the record back to the space admins. False when `user` does not own it
    (any more): nothing changes."""
    count = evidence.orphan_record(
        record=record,
        user=user,
        now=timezone.now(),
        message=f"{user.username} said it is not theirs; the space admins should reassign it",
    )
    return count > 0


def unsubscribe(*, user: User) -> User:
    """Stop all digest emails for `user` (they can turn them back on in their settings)."""
    User.objects.filter(pk=user.pk).update(digest_frequency=User.DigestFrequency.OFF)
    user.digest_frequency = User.DigestFrequency.OFF
    return user


def digest_frequency_set(*, user: User, frequency: str) -> User:
    if frequency not in User.DigestFrequency.values:
        raise InvalidInput(
            f"Use one of {', '.join(User.DigestFrequency.values)}.",
            details={"digest_frequency": ["Invalid choice."]},
        )
    User.objects.filter(pk=user.pk).update(digest_frequency=frequency)
    user.digest_frequency = frequency
    return user

"""Reads for digests, review queues and the health dashboard.

Split by concern; this package is the door the other apps, the tasks and the views use:

- `ranking` which records need attention and how urgent each is (Python and its SQL twin);
- `digest`  owners' digests, admins' escalations, the review queue, who gets an email;
- `health`  the health dashboard.
"""

from apps.reminders.selectors.digest import (
    DIGEST_LIMIT,
    ESCALATION_LIMIT,
    QUEUE_LIMIT,
    admins_with_escalations,
    digest_items,
    escalation_items,
    review_queue,
    users_with_digest_items,
    without_recent_digest,
)
from apps.reminders.selectors.health import TREND_DAYS, health, uncovered_paths
from apps.reminders.selectors.ranking import (
    IMPACT_WEIGHT,
    KIND_WEIGHT,
    NEEDS_REVIEW,
    RETIRED,
    STATE_RANK,
    DigestGroups,
    Item,
    SpaceGroup,
    attention_qs,
    days_stale,
    impact_weight,
    sort_key,
    sql_priority,
    total_of,
    urgency,
)

__all__ = [
    "DIGEST_LIMIT",
    "ESCALATION_LIMIT",
    "IMPACT_WEIGHT",
    "KIND_WEIGHT",
    "NEEDS_REVIEW",
    "QUEUE_LIMIT",
    "RETIRED",
    "STATE_RANK",
    "TREND_DAYS",
    "DigestGroups",
    "Item",
    "SpaceGroup",
    "admins_with_escalations",
    "attention_qs",
    "days_stale",
    "digest_items",
    "escalation_items",
    "health",
    "impact_weight",
    "review_queue",
    "sort_key",
    "sql_priority",
    "total_of",
    "uncovered_paths",
    "urgency",
    "users_with_digest_items",
    "without_recent_digest",
]

"""Writes of the staleness engine: the sweep, drift reports, policy changes, one-click actions,
digest deliveries (claimed exactly once) and daily health snapshots.

Split by concern; this package is the door the other apps, the tasks and the views use:

- `staleness`  the sweep, a space's review policy, the daily health snapshots;
- `drift`      drift reports (changed paths make anchored records suspect);
- `actions`    one-click links from reminders, "not mine", digest preferences;
- `deliveries` digest rows: planned, claimed, re-queued, retried, finished.
"""

from apps.reminders.services.actions import (
    digest_frequency_set,
    link_not_mine,
    link_still_true,
    not_mine,
    unsubscribe,
    use_link,
)
from apps.reminders.services.deliveries import (
    delivery_claim,
    delivery_finish,
    delivery_message_id,
    delivery_plan,
    delivery_reclaim_stuck,
    delivery_retry,
)
from apps.reminders.services.drift import MAX_CHANGED_PATHS, MAX_PATH_CHARS, drift_report
from apps.reminders.services.staleness import (
    SWEEP_LOOKBACK,
    snapshot_health,
    space_policy_update,
    sweep,
)

__all__ = [
    "MAX_CHANGED_PATHS",
    "MAX_PATH_CHARS",
    "SWEEP_LOOKBACK",
    "delivery_claim",
    "delivery_finish",
    "delivery_message_id",
    "delivery_plan",
    "delivery_reclaim_stuck",
    "delivery_retry",
    "digest_frequency_set",
    "drift_report",
    "link_not_mine",
    "link_still_true",
    "not_mine",
    "snapshot_health",
    "space_policy_update",
    "sweep",
    "unsubscribe",
    "use_link",
]

"""Every write to records goes through these functions.

Each one checks the actor's rights, validates, writes the change and its revision, refreshes the
search data and raises staleness evidence, all in one transaction. A refused write changes
nothing.

By concern: `records` (create, update), `lifecycle` (archive, unarchive, restore), `links`
(link, unlink, supersede, a successor in one step), `verification` (verify), `validation` (the
input rules every door shares) and `common` (rights, locking, revisions, search data, cached
freshness). Other apps import from this package, not from its modules.
"""

from apps.records.revisions import snapshot, write_revision
from apps.records.services.common import refresh_freshness
from apps.records.services.lifecycle import (
    record_archive,
    record_restore_revision,
    record_unarchive,
)
from apps.records.services.links import (
    carryable_links,
    record_link,
    record_supersede,
    record_supersede_with_new,
    record_unlink,
)
from apps.records.services.records import create_submission_prune, record_create, record_update
from apps.records.services.validation import (
    EDITABLE_FIELDS,
    MATERIAL_FIELDS,
    MAX_ANCHORS,
    MAX_BODY_CHARS,
    MAX_TAGS,
    TAG_RE,
    tag_problem,
)
from apps.records.services.validation import normalise as _normalise  # apps.agents checks with it
from apps.records.services.verification import record_verify

__all__ = [
    "EDITABLE_FIELDS",
    "MATERIAL_FIELDS",
    "MAX_ANCHORS",
    "MAX_BODY_CHARS",
    "MAX_TAGS",
    "TAG_RE",
    "_normalise",
    "carryable_links",
    "create_submission_prune",
    "record_archive",
    "record_create",
    "record_link",
    "record_restore_revision",
    "record_supersede",
    "record_supersede_with_new",
    "record_unarchive",
    "record_unlink",
    "record_update",
    "record_verify",
    "refresh_freshness",
    "snapshot",
    "tag_problem",
    "write_revision",
]

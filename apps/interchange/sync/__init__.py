"""Two-way sync of a space with a folder of a git repository, through the git command line.

Pull (`pull`): clone the branch, read the folder, and import it with the re-import rules (a
three-way merge per field: an edit made in the app is never overwritten; a file both sides
changed is listed for a person, `RepoLink.waiting`). Push (`push`): every record whose version
differs from what the folder holds is written as MADR with front matter, one commit per app
change (revision) in the order they were made, with its author and time, on `push_branch`,
ready for a pull or merge request. Files waiting for a person are never pushed over. Each run
leaves its outcome on the link (`status`: `last_*`), shown on the sync page and in the API.
The link's settings and rights are in `links`; the credential, git and the lock in `git`.

This package is the door the views, the API, the tasks and the commands use.
"""

from apps.interchange.models import RepoLink
from apps.interchange.sync.links import (
    links_for_push,
    pull_after_push,
    repo_link_for,
    repo_link_save,
    require_sync_rights,
)
from apps.interchange.sync.pull import repo_pull
from apps.interchange.sync.push import repo_push
from apps.interchange.sync.status import SyncOutcome, combined


def repo_sync(*, link: RepoLink) -> list[SyncOutcome]:
    """Pull, then (when the pull worked) push."""
    pulled = repo_pull(link=link)
    if pulled.result == RepoLink.Result.FAILED:
        return [pulled]
    return [pulled, repo_push(link=link)]


__all__ = [
    "SyncOutcome",
    "combined",
    "links_for_push",
    "pull_after_push",
    "repo_link_for",
    "repo_link_save",
    "repo_pull",
    "repo_push",
    "repo_sync",
    "require_sync_rights",
]

"""Pull: clone the branch, read the folder, and import it with the re-import rules (a three-way
merge per field: an edit made in the app is never overwritten; a file both sides changed is
listed for a person, `RepoLink.waiting`)."""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path

from apps.core.errors import InvalidInput, ServiceError
from apps.interchange import gitcli, services, sources
from apps.interchange.models import RepoLink
from apps.interchange.summary import ImportSummary
from apps.interchange.sync.git import Remote, last_line
from apps.interchange.sync.links import sync_actor
from apps.interchange.sync.status import SyncOutcome, finish, latest_revisions, run_alone
from apps.records.models import Record

_CLASH = "changed in contextkb since the last import"


def repo_pull(*, link: RepoLink) -> SyncOutcome:
    """Bring the branch's folder into the space (see the module doc)."""
    return run_alone(link, _pull)


def _pull(link: RepoLink) -> SyncOutcome:
    try:
        actor = sync_actor(link)
        remote = Remote(link)
        with tempfile.TemporaryDirectory(prefix="contextkb-pull-") as tmp:
            checkout = Path(tmp) / "repo"
            remote.clone(checkout, link.branch)
            head = gitcli.run(["rev-parse", "HEAD"], cwd=checkout).stdout.strip()
            notes = _history_notes(link, checkout, head)
            folder = checkout / link.folder if link.folder else checkout
            if not folder.is_dir():
                raise InvalidInput(
                    f"The folder {link.folder!r} is not on {link.branch} at {head[:12]}."
                )
            files = sources.read_folder(folder)
            summary = services.import_files(space=link.space, files=files, actor=actor)
    except ServiceError as exc:
        return finish(link, "pull", RepoLink.Result.FAILED, exc.message)
    except gitcli.GitError as exc:
        return finish(link, "pull", RepoLink.Result.FAILED, f"git: {last_line(exc.message)}")

    clashes = {s["path"]: s["reason"] for s in summary.skipped if _CLASH in s["reason"]}
    link.waiting = _waiting(link, clashes)
    _note_in_step(link, summary)
    link.last_pulled_commit = head
    problems = [f"{s['path']}: {s['reason']}" for s in summary.skipped if s["path"] not in clashes]
    message = " ".join([_counted(link, head, summary), *notes, *_left(link, problems)])
    result = RepoLink.Result.WAITING if link.waiting or problems else RepoLink.Result.OK
    return finish(link, "pull", result, message, summary.as_dict())


def _history_notes(link: RepoLink, checkout: Path, head: str) -> list[str]:
    """A word when the commit pulled last time is no longer in the branch's history."""
    previous = link.last_pulled_commit
    if not previous or previous == head:
        return []
    known = gitcli.run(["merge-base", "--is-ancestor", previous, head], cwd=checkout, check=False)
    if known.returncode == 0:
        return []
    return [
        f"The branch {link.branch} was force-pushed: {previous[:12]}, pulled last "
        f"time, is no longer in its history. The new history was pulled; edits "
        "made in contextkb were kept."
    ]


def _waiting(link: RepoLink, clashes: dict[str, str]) -> list[dict]:
    """The files waiting for a person after this pull: the ones both sides changed."""
    keys = dict(
        Record.objects.filter(space=link.space, source_path__in=list(clashes)).values_list(
            "source_path", "key"
        )
    )
    waiting = {w["path"]: w for w in link.waiting}
    for path in list(waiting):
        if path not in clashes:
            del waiting[path]  # brought together since: no longer waiting
    for path, reason in clashes.items():
        waiting[path] = {
            "path": posixpath.join(link.folder, path),
            "file": path,
            "key": keys.get(path, ""),
            "message": "Changed here and in the repository since the last sync; neither side "
            "was overwritten. " + reason.split(": not overwritten")[0].capitalize() + ".",
        }
    return sorted(waiting.values(), key=lambda w: w["path"])


def _note_in_step(link: RepoLink, summary: ImportSummary) -> None:
    """What the folder now holds, for the push: the records that are exactly what their file
    says. A record edited in the app (and not in the file) stays due for a push."""
    pulled = latest_revisions(
        Record.objects.filter(
            space=link.space,
            key__in=[e["key"] for e in summary.created + summary.updated + summary.unchanged],
        )
    )
    for pk in services.in_step_with_files(pulled):
        link.synced_versions[str(pk)] = pulled[pk]


def _counted(link: RepoLink, head: str, summary: ImportSummary) -> str:
    c = summary.counts()
    return (
        f"Pulled {head[:12]} of {link.branch}: {c['created']} created, {c['updated']} updated, "
        f"{c['unchanged']} unchanged."
    )


def _left(link: RepoLink, problems: list[str]) -> list[str]:
    """The sentences on what was not imported and what waits for a person."""
    words = []
    if problems:
        words.append("Not imported: " + "; ".join(problems) + ".")
    if link.waiting:
        count = len(link.waiting)
        words.append(
            f"{count} file{'s wait' if count != 1 else ' waits'} for a person (listed below)."
        )
    return words

"""Push: every record whose version differs from what the folder holds is written as MADR with
front matter, one commit per app change (revision) in the order they were made, with its author
and time, on `push_branch`, ready for a pull or merge request. Files waiting for a person are
never pushed over."""

from __future__ import annotations

import copy
import datetime as dt
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.text import slugify

from apps.accounts.models import Team, User
from apps.core.errors import ServiceError
from apps.interchange import gitcli, services
from apps.interchange.models import RepoLink
from apps.interchange.sync.git import Remote, last_line
from apps.interchange.sync.links import sync_actor
from apps.interchange.sync.status import SyncOutcome, finish, latest_revisions, result_of, run_alone
from apps.records.models import Link, Record, Revision

# Who committed (the app); each commit's author is the person who made the change.
_COMMITTER = ["-c", "user.name=contextkb", "-c", "user.email=contextkb@localhost"]


def repo_push(*, link: RepoLink) -> SyncOutcome:
    """Commit every change made in the app since the folder last held its record, one commit per
    change (revision) with its author, on `push_branch`, and push that branch."""
    return run_alone(link, _push)


def _push(link: RepoLink) -> SyncOutcome:
    try:
        sync_actor(link)
        remote = Remote(link)
        records = list(
            Record.objects.filter(space=link.space)
            .select_related("space", "owner_user", "owner_team", "updated_by", "created_by")
            .order_by("kind", "number")
        )
        latest = latest_revisions(records)
        waiting_files = {w["file"] for w in link.waiting}
        changed = [
            r
            for r in records
            if link.synced_versions.get(str(r.pk)) != latest.get(r.pk)
            and r.source_path not in waiting_files
        ]
        if not changed:
            return finish(link, "push", result_of(link), "Nothing to push: the folder is current.")
        with tempfile.TemporaryDirectory(prefix="contextkb-push-") as tmp:
            checkout = Path(tmp) / "repo"
            _check_out_push_branch(remote, checkout)
            folder = checkout / link.folder if link.folder else checkout
            folder.mkdir(parents=True, exist_ok=True)
            commits = _Writer(link, checkout, folder, records).commit(changed, latest)
            if commits:
                remote.run(
                    ["push", "--quiet", "origin", f"HEAD:refs/heads/{link.push_branch}"],
                    cwd=checkout,
                )
    except ServiceError as exc:
        return finish(link, "push", RepoLink.Result.FAILED, exc.message)
    except gitcli.GitError as exc:
        return finish(link, "push", RepoLink.Result.FAILED, _failure(link, exc))
    return _pushed(link, changed, latest, commits)


def _check_out_push_branch(remote: Remote, checkout: Path) -> None:
    """Clone the branch, and continue `push_branch` where the remote has it (else start it)."""
    link = remote.link
    remote.clone(checkout, link.branch)
    has_branch = remote.run(
        ["ls-remote", "--heads", "origin", link.push_branch], cwd=checkout
    ).strip()
    if has_branch:
        remote.run(
            ["fetch", "--quiet", "origin", f"{link.push_branch}:refs/remotes/origin/pb"],
            cwd=checkout,
        )
        gitcli.run(["checkout", "--quiet", "-B", link.push_branch, "origin/pb"], cwd=checkout)
    else:
        gitcli.run(["checkout", "--quiet", "-B", link.push_branch], cwd=checkout)


def _failure(link: RepoLink, exc: gitcli.GitError) -> str:
    words = last_line(exc.message)
    if "rejected" in exc.message or "non-fast-forward" in exc.message:
        return (
            f"The push to {link.push_branch} was rejected ({words}). Nothing was lost: the "
            "edits stay here and are pushed again on the next sync."
        )
    return f"The push failed: {words}. Nothing was lost; it is tried again next sync."


def _pushed(
    link: RepoLink,
    changed: list[Record],
    latest: dict[int, int],
    commits: list[tuple[Record, str]],
) -> SyncOutcome:
    """Note what the folder now holds (and the new files' paths), and say what was pushed."""
    for record, path in {r.pk: (r, p) for r, p in commits}.values():
        if not record.source_path:
            Record.objects.filter(pk=record.pk, source_path="").update(source_path=path)
    for record in changed:  # committed, or the folder already held it
        link.synced_versions[str(record.pk)] = latest.get(record.pk)
    keys = list(dict.fromkeys(r.key for r, _ in commits))
    message = (
        f"Pushed {len(commits)} commit{'s' if len(commits) != 1 else ''} to {link.push_branch}: "
        + ", ".join(keys)
        + f". Open a pull or merge request from {link.push_branch} into {link.branch}."
        if commits
        else "Nothing to push: the folder already holds every edit."
    )
    return finish(link, "push", result_of(link), message)


@dataclass
class _People:
    """What an old revision's owner ids and link targets refer to, read once per push."""

    ids: set[int]  # the space's records: links to anything else are not written
    users: dict[Any, User]
    teams: dict[Any, Team]


class _Writer:
    """Writes and commits the pending changes of one space into a checkout's folder."""

    def __init__(self, link: RepoLink, checkout: Path, folder: Path, records: list[Record]):
        self.link, self.checkout, self.folder = link, checkout, folder
        self.prefix, self.width = _scheme(sorted(p.name for p in folder.iterdir()))
        self.ids = {r.pk for r in records}
        self.links: dict[int, dict[str, list[str]]] = {}
        for source_id, link_type, target_key, target_id in Link.objects.filter(
            source_id__in=self.ids
        ).values_list("source_id", "type", "target__key", "target_id"):
            if target_id in self.ids:
                self.links.setdefault(source_id, {}).setdefault(link_type, []).append(target_key)
        self.facts = services.facts_for(self.ids)
        self.paths: dict[int, str] = {}

    def commit(self, changed: list[Record], latest: dict[int, int]) -> list[tuple[Record, str]]:
        """One commit per app change since the last push, in the order they were made; the
        (record, path) of each commit."""
        pending = [
            (record, rev)
            for record in changed
            for rev in _pending(self.link, record, latest.get(record.pk))
        ]
        pending.sort(key=lambda pair: (pair[1].created_at, pair[1].pk))
        people = _People(
            ids=self.ids,
            users=User.objects.in_bulk({p[1].snapshot.get("owner_user") for p in pending} - {None}),
            teams=Team.objects.in_bulk({p[1].snapshot.get("owner_team") for p in pending} - {None}),
        )
        commits = []
        for record, revision in pending:
            path = self._path(record)
            if revision.number == latest.get(record.pk):
                # The last change: the record as it is now (its review dates included).
                then, then_links = record, self.links.get(record.pk, {})
            else:
                then, then_links = _as_of(record, revision, people)
            content = services.render_record(then, then_links, None, self.facts.get(record.pk))
            if self._write(path, content):
                self._commit(path, record, revision)
                commits.append((record, path))
        return commits

    def _path(self, record: Record) -> str:
        """The record's file: where it was, else a new name in the folder's numbering."""
        path = self.paths.get(record.pk) or record.source_path
        if not path or not services.safe_relative(path):
            slug = slugify(record.title)[:60] or "record"
            path = f"{self.prefix}{record.number:0{self.width}d}-{slug}.md"
        self.paths[record.pk] = path
        return path

    def _write(self, path: str, content: str) -> bool:
        """Write the file; False when it already says exactly that."""
        target = self.folder / path
        if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == content:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return True

    def _commit(self, path: str, record: Record, revision: Revision) -> None:
        repo_path = posixpath.join(self.link.folder, path) if self.link.folder else path
        gitcli.run(["add", "--", repo_path], cwd=self.checkout)
        author, when, message = _commit_message(record, revision)
        gitcli.run(
            [*_COMMITTER, "commit", "--quiet", "--author", author, "--date", when, "-m", message],
            cwd=self.checkout,
        )


def _scheme(names: list[str]) -> tuple[str, int]:
    """The folder's numbering: its prefix and digit count (`0012-x.md` → ("", 4),
    `ADR-012-x.md` → ("ADR-", 3)); ("", 4) for an empty folder."""
    seen: dict[tuple[str, int], int] = {}
    for name in names:
        m = re.match(r"^([A-Za-z]{1,4}[-_]?)?(\d{2,5})[-_]", name)
        if m:
            key = (m.group(1) or "", len(m.group(2)))
            seen[key] = seen.get(key, 0) + 1
    if not seen:
        return "", 4
    return max(seen, key=lambda k: seen[k])


def _person(user: User | None) -> str:
    if user is None:
        return "contextkb <contextkb@localhost>"
    name = (user.get_full_name() or user.username or "contextkb").replace("<", "").replace(">", "")
    email = (user.email or f"{user.username}@users.contextkb").replace("<", "").replace(">", "")
    return f"{name} <{email}>"


def _pending(link: RepoLink, record: Record, latest: int | None) -> list[Revision]:
    """The app changes of `record` the folder does not hold yet, oldest first: every revision
    after the one last synced. A record the folder never held is pushed from its changes since
    the space was linked, or, when it had none (it predates the link), as it is now."""
    since = link.synced_versions.get(str(record.pk))
    revisions = Revision.objects.filter(record=record).select_related("author").order_by("number")
    if since:
        return list(revisions.filter(number__gt=since))
    pending = list(revisions.filter(created_at__gte=link.created_at))
    if not pending and latest:
        pending = list(revisions.filter(number=latest))
    return pending


def _as_of(record: Record, revision: Revision, people: _People) -> tuple[Record, dict]:
    """`record` as its `revision` left it (a copy; only what the file shows), and its links."""
    snap = revision.snapshot or {}
    then = copy.copy(record)
    for name in ("title", "summary", "body", "status", "reversibility", "impact", "deciders"):
        if name in snap:
            setattr(then, name, snap[name] if snap[name] is not None else "")
    then.tags = list(snap.get("tags") or [])
    then.anchors = list(snap.get("anchors") or [])
    for name in ("decided_on", "valid_until"):
        value = snap.get(name)
        setattr(then, name, dt.date.fromisoformat(value) if value else None)
    then.archived_at = record.archived_at or revision.created_at if snap.get("archived") else None
    then.owner_user_id, then.owner_team_id = snap.get("owner_user"), snap.get("owner_team")
    then.owner_user = people.users.get(then.owner_user_id)
    then.owner_team = people.teams.get(then.owner_team_id)
    if then.owner_user_id and then.owner_user is None:
        then.owner_user_id = None  # the user is gone: the file says no owner rather than fail
    if then.owner_team_id and then.owner_team is None:
        then.owner_team_id = None
    links: dict[str, list[str]] = {}
    for item in snap.get("links") or []:
        if item.get("target_id") in people.ids:
            links.setdefault(item["type"], []).append(item["target"])
    return then, links


def _commit_message(record: Record, revision: Revision) -> tuple[str, str, str]:
    """(author, date, message) of the commit for one app change: its author and time, its
    change note and the record's key as the subject."""
    note = " ".join((revision.message or "").split())[:150]
    title = " ".join(record.title.split())[:150]
    if not note or note == revision.get_action_display():
        note = f"{revision.get_action_display()} \u201c{title}\u201d"
    lines = [
        f"{record.key}: {note}",
        "",
        f"{record.key} ({title}), r{revision.number}, edited in contextkb.",
    ]
    return _person(revision.author), revision.created_at.isoformat(), "\n".join(lines)

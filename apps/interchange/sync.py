"""Two-way sync of a space with a folder of a git repository, through the git command line.

Pull: clone the branch, read the folder, and import it with the re-import rules (a three-way
merge per field: an edit made in the app is never overwritten; a file both sides changed is
listed for a person, `RepoLink.waiting`). Push: every record whose version differs from what
the folder holds is written as MADR with front matter, one commit per app change (revision) in
the order they were made, with its author and time, on `push_branch`, ready for a pull or merge request. Files waiting for a person are never
pushed over. Each run leaves its outcome on the link (`last_*`), shown on the sync page and in
the API.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import logging
import posixpath
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts import access
from apps.accounts.models import Space, Team, User
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from apps.interchange import gitcli, services, sources
from apps.interchange.models import RepoLink
from apps.records.models import Link, Record, Revision

log = logging.getLogger(__name__)

_SCHEMES = ("https", "http", "ssh", "git")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")  # git@github.com:acme/kb.git
_REF = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[\w./-]{1,200}(?<![/.])$")
_CLASH = "changed in contextkb since the last import"
_LOCK_BASE = 0x6B62_0000_0000  # advisory lock keys of repository syncs: this + the link's id


# --- the credential: encrypted at rest, never shown back, never logged ---------------------------


def _fernet() -> Fernet:
    key = hashlib.sha256(("contextkb.repo-credential:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def unseal(sealed: str) -> str:
    if not sealed:
        return ""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        # SECRET_KEY was rotated: the token must be entered again.
        raise InvalidInput(
            "The stored credential can no longer be read (the server's secret key changed). "
            "Enter the access token again on the sync page."
        ) from None


def _auth_env(link: RepoLink) -> tuple[dict[str, str], list[str]]:
    """Git configuration that sends the credential as an HTTP header, passed through the
    environment (never on the command line, never in the remote URL), and the strings to blank
    out of any message."""
    token = unseal(link.credential_sealed)
    if not token:
        return {}, []
    basic = base64.b64encode(f"{link.username or 'x-access-token'}:{token}".encode()).decode()
    env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }
    return env, [token, basic]


# --- settings -----------------------------------------------------------------------------------


def _check_remote(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise InvalidInput("Enter the repository's address.", details={"remote_url": ["Required."]})
    if _SCP_LIKE.match(url):
        return url
    parts = urlsplit(url)
    allowed = _SCHEMES + (("file",) if settings.CONTEXTKB_SYNC_ALLOW_FILE_REMOTES else ())
    if parts.scheme not in allowed:
        raise InvalidInput(
            f"Use an {', '.join(s + '://' for s in allowed)} or git@host:path address.",
            details={"remote_url": ["Unsupported address."]},
        )
    if parts.password or (parts.username and parts.scheme in ("https", "http")):
        raise InvalidInput(
            "Do not put a user or token in the address; enter the token as the credential.",
            details={"remote_url": ["Contains a credential."]},
        )
    return url


def _check_ref(value: str, name: str) -> str:
    value = (value or "").strip()
    if not _REF.match(value) or value.startswith("-"):
        raise InvalidInput(f"{value!r} is not a branch name.", details={name: ["Invalid."]})
    return value


def _check_folder(value: str) -> str:
    value = (value or "").strip().strip("/")
    if value and (
        ".." in value.split("/") or value.startswith("-") or "\\" in value or "\x00" in value
    ):
        raise InvalidInput(
            "The folder must be a path inside the repository.", details={"folder": ["Invalid."]}
        )
    return value


def repo_link_save(
    *,
    space: Space,
    actor,
    remote_url: str,
    branch: str = "main",
    folder: str = "docs/adr",
    push_branch: str = "contextkb/edits",
    username: str = "",
    credential: str | None = None,
) -> RepoLink:
    """Link `space` to a repository folder (space admins). `credential`: None keeps the stored
    one, "" removes it."""
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_admin(actor, space):
        raise Forbidden(f"You need to be an admin of {space.name} to link it to a repository.")
    values = {
        "remote_url": _check_remote(remote_url),
        "branch": _check_ref(branch, "branch"),
        "folder": _check_folder(folder),
        "push_branch": _check_ref(push_branch, "push_branch"),
        "username": (username or "").strip()[:100],
    }
    if values["push_branch"] == values["branch"]:
        raise InvalidInput(
            "Edits are pushed to their own branch, for a pull or merge request: choose a push "
            "branch other than the branch you pull from.",
            details={"push_branch": ["Same as the branch."]},
        )
    with transaction.atomic():
        link = RepoLink.objects.select_for_update().filter(space=space).first()
        moved = link is not None and (
            link.remote_url != values["remote_url"]
            or link.branch != values["branch"]
            or link.folder != values["folder"]
        )
        if link is None:
            link = RepoLink(space=space, created_by=access.user_of(actor))
        for name, value in values.items():
            setattr(link, name, value)
        if credential is not None:
            link.credential_sealed = seal(credential.strip())
        if moved:
            # Another folder: what we knew about the old one says nothing about it.
            link.last_pulled_commit, link.synced_versions, link.waiting = "", {}, []
        link.save()
    return link


# --- running ------------------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    result: str
    message: str
    waiting: list[dict]
    summary: dict


def _finish(link: RepoLink, direction: str, result: str, message: str, summary=None) -> SyncOutcome:
    link.last_sync_at = timezone.now()
    link.last_direction = direction
    link.last_result = result
    link.last_message = message[:4000]
    if summary is not None:
        link.last_summary = summary
    RepoLink.objects.filter(pk=link.pk).update(
        last_sync_at=link.last_sync_at,
        last_direction=direction,
        last_result=result,
        last_message=link.last_message,
        last_summary=link.last_summary,
        waiting=link.waiting,
        synced_versions=link.synced_versions,
        last_pulled_commit=link.last_pulled_commit,
    )
    return SyncOutcome(result, link.last_message, list(link.waiting), link.last_summary)


def _clone(link: RepoLink, into: Path, env: dict, secrets: list[str], branch: str) -> None:
    try:
        gitcli.run(
            [
                "-c",
                "protocol.ext.allow=never",
                "clone",
                "--quiet",
                "--no-tags",
                "--branch",
                branch,
                "--",
                link.remote_url,
                str(into),
            ],
            env=env,
            secrets=secrets,
            timeout=settings.CONTEXTKB_SYNC_GIT_TIMEOUT,
        )
    except gitcli.GitError as exc:
        words = exc.message
        if "Remote branch" in words and "not found" in words:
            raise InvalidInput(
                f"The branch {branch!r} does not exist in {link.remote_url}."
            ) from None
        raise InvalidInput(
            f"The repository {link.remote_url} could not be read: {_last_line(words)}"
        ) from None


def _last_line(words: str) -> str:
    lines = [line.strip() for line in words.splitlines() if line.strip()]
    return (lines[-1] if lines else words)[:500]


def _actor(link: RepoLink) -> User:
    user = link.created_by
    if user is None or not user.is_active or not access.can_edit(user, link.space):
        raise Forbidden(
            "The person who linked this repository can no longer edit the space; an admin must "
            "save the repository settings again."
        )
    return user


@contextmanager
def _one_at_a_time(link: RepoLink):
    """A session advisory lock per link: the beat, a webhook and a button press never sync the
    same space at once (a second one is told so, and changes nothing)."""
    key = _LOCK_BASE + link.pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise Conflict("A sync of this space is already running; try again in a minute.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def repo_pull(*, link: RepoLink) -> SyncOutcome:
    """Bring the branch's folder into the space (see the module doc)."""
    link = RepoLink.objects.select_related("space", "created_by").get(pk=link.pk)
    try:
        with _one_at_a_time(link):
            return _pull(link)
    except Conflict as exc:
        return SyncOutcome(RepoLink.Result.FAILED, exc.message, list(link.waiting), {})


def repo_push(*, link: RepoLink) -> SyncOutcome:
    """Commit every change made in the app since the folder last held its record, one commit per
    change (revision) with its author, on `push_branch`, and push that branch."""
    link = RepoLink.objects.select_related("space", "created_by").get(pk=link.pk)
    try:
        with _one_at_a_time(link):
            return _push(link)
    except Conflict as exc:
        return SyncOutcome(RepoLink.Result.FAILED, exc.message, list(link.waiting), {})


def _pull(link: RepoLink) -> SyncOutcome:
    try:
        actor = _actor(link)
        env, secrets = _auth_env(link)
        with tempfile.TemporaryDirectory(prefix="contextkb-pull-") as tmp:
            checkout = Path(tmp) / "repo"
            _clone(link, checkout, env, secrets, link.branch)
            head = gitcli.run(["rev-parse", "HEAD"], cwd=checkout).stdout.strip()
            notes = []
            previous = link.last_pulled_commit
            if previous and previous != head:
                known = gitcli.run(
                    ["merge-base", "--is-ancestor", previous, head], cwd=checkout, check=False
                )
                if known.returncode != 0:
                    notes.append(
                        f"The branch {link.branch} was force-pushed: {previous[:12]}, pulled last "
                        f"time, is no longer in its history. The new history was pulled; edits "
                        "made in contextkb were kept."
                    )
            folder = checkout / link.folder if link.folder else checkout
            if not folder.is_dir():
                raise InvalidInput(
                    f"The folder {link.folder!r} is not on {link.branch} at {head[:12]}."
                )
            files = sources.read_folder(folder)
            summary = services.import_files(space=link.space, files=files, actor=actor)
    except ServiceError as exc:
        return _finish(link, "pull", RepoLink.Result.FAILED, exc.message)
    except gitcli.GitError as exc:
        return _finish(link, "pull", RepoLink.Result.FAILED, f"git: {_last_line(exc.message)}")

    clashes = {s["path"]: s["reason"] for s in summary.skipped if _CLASH in s["reason"]}
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
    link.waiting = sorted(waiting.values(), key=lambda w: w["path"])
    # What the folder now holds, for the push: the records that are exactly what their file
    # says. A record edited in the app (and not in the file) stays due for a push.
    pulled = _revisions(
        Record.objects.filter(
            space=link.space,
            key__in=[e["key"] for e in summary.created + summary.updated + summary.unchanged],
        )
    )
    for pk in services.in_step_with_files(pulled):
        link.synced_versions[str(pk)] = pulled[pk]
    link.last_pulled_commit = head
    problems = [f"{s['path']}: {s['reason']}" for s in summary.skipped if s["path"] not in clashes]
    c = summary.counts()
    message = " ".join(
        [
            f"Pulled {head[:12]} of {link.branch}: {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged.",
            *notes,
            *(["Not imported: " + "; ".join(problems) + "."] if problems else []),
            *(
                [
                    f"{len(link.waiting)} file{'s wait' if len(link.waiting) != 1 else ' waits'} "
                    "for a person (listed below)."
                ]
                if link.waiting
                else []
            ),
        ]
    )
    result = RepoLink.Result.WAITING if link.waiting or problems else RepoLink.Result.OK
    return _finish(link, "pull", result, message, summary.as_dict())


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


def _revisions(records) -> dict[int, int]:
    """{record id: its latest revision number}. Revisions count every change, links included
    (a link adds a revision without bumping the record's version)."""
    return dict(
        Revision.objects.filter(record__in=records)
        .values("record_id")
        .annotate(latest=Max("number"))
        .values_list("record_id", "latest")
    )


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


def _as_of(record: Record, revision: Revision, people: dict) -> tuple[Record, dict]:
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
    then.owner_user = people["users"].get(then.owner_user_id)
    then.owner_team = people["teams"].get(then.owner_team_id)
    if then.owner_user_id and then.owner_user is None:
        then.owner_user_id = None  # the user is gone: the file says no owner rather than fail
    if then.owner_team_id and then.owner_team is None:
        then.owner_team_id = None
    links: dict[str, list[str]] = {}
    for item in snap.get("links") or []:
        if item.get("target_id") in people["ids"]:
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


def _push(link: RepoLink) -> SyncOutcome:
    try:
        _actor(link)
        env, secrets = _auth_env(link)
        waiting_files = {w["file"] for w in link.waiting}
        records = list(
            Record.objects.filter(space=link.space)
            .select_related("space", "owner_user", "owner_team", "updated_by", "created_by")
            .order_by("kind", "number")
        )
        latest = _revisions(records)
        changed = [
            r
            for r in records
            if link.synced_versions.get(str(r.pk)) != latest.get(r.pk)
            and r.source_path not in waiting_files
        ]
        if not changed:
            return _finish(link, "push", _result(link), "Nothing to push: the folder is current.")
        with tempfile.TemporaryDirectory(prefix="contextkb-push-") as tmp:
            checkout = Path(tmp) / "repo"
            _clone(link, checkout, env, secrets, link.branch)
            remote_has = gitcli.run(
                ["ls-remote", "--heads", "origin", link.push_branch],
                cwd=checkout,
                env=env,
                secrets=secrets,
                timeout=settings.CONTEXTKB_SYNC_GIT_TIMEOUT,
            ).stdout.strip()
            if remote_has:
                gitcli.run(
                    ["fetch", "--quiet", "origin", f"{link.push_branch}:refs/remotes/origin/pb"],
                    cwd=checkout,
                    env=env,
                    secrets=secrets,
                    timeout=settings.CONTEXTKB_SYNC_GIT_TIMEOUT,
                )
                gitcli.run(
                    ["checkout", "--quiet", "-B", link.push_branch, "origin/pb"], cwd=checkout
                )
            else:
                gitcli.run(["checkout", "--quiet", "-B", link.push_branch], cwd=checkout)
            folder = checkout / link.folder if link.folder else checkout
            folder.mkdir(parents=True, exist_ok=True)
            prefix, width = _scheme(sorted(p.name for p in folder.iterdir()))
            ids = {r.pk for r in records}
            links: dict[int, dict[str, list[str]]] = {}
            for source_id, link_type, target_key, target_id in Link.objects.filter(
                source_id__in=ids
            ).values_list("source_id", "type", "target__key", "target_id"):
                if target_id in ids:
                    links.setdefault(source_id, {}).setdefault(link_type, []).append(target_key)
            facts = services.facts_for(ids)
            # One commit per app change since the last push, in the order they were made.
            pending = [
                (record, rev)
                for record in changed
                for rev in _pending(link, record, latest.get(record.pk))
            ]
            pending.sort(key=lambda pair: (pair[1].created_at, pair[1].pk))
            people = {
                "ids": ids,
                "users": User.objects.in_bulk(
                    {p[1].snapshot.get("owner_user") for p in pending} - {None}
                ),
                "teams": Team.objects.in_bulk(
                    {p[1].snapshot.get("owner_team") for p in pending} - {None}
                ),
            }
            last_of = {record.pk: latest.get(record.pk) for record in changed}
            paths: dict[int, str] = {}
            commits = []
            for record, revision in pending:
                path = paths.get(record.pk) or record.source_path
                if not path or not services.safe_relative(path):
                    path = f"{prefix}{record.number:0{width}d}-{slugify(record.title)[:60] or 'record'}.md"
                paths[record.pk] = path
                if revision.number == last_of[record.pk]:
                    # The last change: the record as it is now (its review dates included).
                    then, then_links = record, links.get(record.pk, {})
                else:
                    then, then_links = _as_of(record, revision, people)
                target = folder / path
                content = services.render_record(then, then_links, None, facts.get(record.pk))
                if (
                    target.is_file()
                    and target.read_text(encoding="utf-8", errors="replace") == content
                ):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                repo_path = posixpath.join(link.folder, path) if link.folder else path
                gitcli.run(["add", "--", repo_path], cwd=checkout)
                author, when, message = _commit_message(record, revision)
                gitcli.run(
                    [
                        "-c", "user.name=contextkb", "-c", "user.email=contextkb@localhost",
                        "commit", "--quiet", "--author", author, "--date", when, "-m", message,
                    ],
                    cwd=checkout,
                )  # fmt: skip
                commits.append((record, path))
            if commits:
                gitcli.run(
                    ["push", "--quiet", "origin", f"HEAD:refs/heads/{link.push_branch}"],
                    cwd=checkout,
                    env=env,
                    secrets=secrets,
                    timeout=settings.CONTEXTKB_SYNC_GIT_TIMEOUT,
                )
    except ServiceError as exc:
        return _finish(link, "push", RepoLink.Result.FAILED, exc.message)
    except gitcli.GitError as exc:
        words = _last_line(exc.message)
        if "rejected" in exc.message or "non-fast-forward" in exc.message:
            message = (
                f"The push to {link.push_branch} was rejected ({words}). Nothing was lost: the "
                "edits stay here and are pushed again on the next sync."
            )
        else:
            message = f"The push failed: {words}. Nothing was lost; it is tried again next sync."
        return _finish(link, "push", RepoLink.Result.FAILED, message)
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
    return _finish(link, "push", _result(link), message)


def _result(link: RepoLink) -> str:
    return RepoLink.Result.WAITING if link.waiting else RepoLink.Result.OK


def repo_sync(*, link: RepoLink) -> list[SyncOutcome]:
    """Pull, then (when the pull worked) push."""
    pulled = repo_pull(link=link)
    if pulled.result == RepoLink.Result.FAILED:
        return [pulled]
    return [pulled, repo_push(link=link)]


def combined(outcomes: list[SyncOutcome]) -> SyncOutcome:
    """A pull and a push as one outcome: the worse result, both messages."""
    order = [RepoLink.Result.OK, RepoLink.Result.WAITING, RepoLink.Result.FAILED]
    worst = max((o.result for o in outcomes), key=order.index)
    return SyncOutcome(
        worst,
        " ".join(o.message for o in outcomes),
        outcomes[-1].waiting,
        outcomes[0].summary,
    )


def repo_link_for(*, space: Space, actor) -> RepoLink | None:
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    return RepoLink.objects.filter(space=space).first()


def require_sync_rights(*, space: Space, actor) -> RepoLink:
    link = repo_link_for(space=space, actor=actor)
    if not access.can_edit(actor, space):
        raise Forbidden(f"You need to be an editor of {space.name} to sync it.")
    if link is None:
        raise NotFound(f"{space.name} is not linked to a repository.")
    return link


def links_for_push(*, repository: str, ref: str) -> list[int]:
    """Ids of the links a push webhook concerns: `repository` is `owner/name` (GitHub's
    full_name, GitLab's path_with_namespace), `ref` the pushed `refs/heads/<branch>`."""
    if not repository or not ref.startswith("refs/heads/"):
        return []
    branch = ref.removeprefix("refs/heads/")
    wanted = repository.strip("/").lower()
    ids = []
    for pk, url, link_branch in RepoLink.objects.values_list("pk", "remote_url", "branch"):
        path = url.split(":", 1)[1] if _SCP_LIKE.match(url) else urlsplit(url).path
        path = path.strip("/").lower().removesuffix(".git")
        if link_branch == branch and (path == wanted or path.endswith("/" + wanted)):
            ids.append(pk)
    return ids


def pull_after_push(*, repository: str, ref: str) -> int:
    """A push webhook arrived: queue a sync (pull, then push) of every space linked to that
    repository's pushed branch, after commit. Returns how many were queued."""
    from apps.interchange.tasks import sync_repo

    ids = links_for_push(repository=repository, ref=ref)
    for link_id in ids:
        transaction.on_commit(lambda link_id=link_id: sync_repo.delay(link_id))
    return len(ids)

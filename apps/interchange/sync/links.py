"""The repository link of a space: its settings (checked, the credential sealed), who may run
a sync, and which links a push webhook concerns."""

from __future__ import annotations

import re
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from apps.accounts import access
from apps.accounts.models import Space, User
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.core.sealing import seal
from apps.interchange.models import RepoLink

_SCHEMES = ("https", "http", "ssh", "git")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")  # git@github.com:acme/kb.git
_REF = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[\w./-]{1,200}(?<![/.])$")


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


def sync_actor(link: RepoLink) -> User:
    """Who a scheduled or webhook sync acts as: the person who linked the repository, while
    they may still edit the space."""
    user = link.created_by
    if user is None or not user.is_active or not access.can_edit(user, link.space):
        raise Forbidden(
            "The person who linked this repository can no longer edit the space; an admin must "
            "save the repository settings again."
        )
    return user


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
        transaction.on_commit(partial(sync_repo.delay, link_id))
    return len(ids)

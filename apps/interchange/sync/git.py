"""The plumbing of a repository sync: git runs against the remote, and
the advisory lock that keeps two syncs of one space apart."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from apps.core.errors import Conflict, InvalidInput
from apps.core.sealing import unseal
from apps.interchange import gitcli
from apps.interchange.models import RepoLink

LOCK_BASE = 0x6B62_0000_0000  # advisory lock keys of repository syncs: this + the link's id


class Remote:
    """The link's repository as git reaches it: the credential goes as an HTTP header through
    the environment (never on the command line, never in the remote URL), and is blanked out
    of any message."""

    def __init__(self, link: RepoLink) -> None:
        self.link = link
        self.env: dict[str, str] = {}
        self.secrets: list[str] = []
        token = unseal(
            link.credential_sealed, enter_again="Enter the access token again on the sync page."
        )
        if token:
            user = link.username or "x-access-token"
            basic = base64.b64encode(f"{user}:{token}".encode()).decode()
            self.env = {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
            self.secrets = [token, basic]

    def run(self, args: list[str], *, cwd: Path | None = None) -> str:
        """`git <args>` talking to the remote (with the credential and the sync's timeout);
        its output."""
        return gitcli.run(
            args,
            cwd=cwd,
            env=self.env,
            secrets=self.secrets,
            timeout=settings.CONTEXTKB_SYNC_GIT_TIMEOUT,
        ).stdout

    def clone(self, into: Path, branch: str) -> None:
        url = self.link.remote_url
        try:
            self.run(
                ["-c", "protocol.ext.allow=never", "clone", "--quiet", "--no-tags",
                 "--branch", branch, "--", url, str(into)]
            )  # fmt: skip
        except gitcli.GitError as exc:
            words = exc.message
            if "Remote branch" in words and "not found" in words:
                raise InvalidInput(f"The branch {branch!r} does not exist in {url}.") from None
            raise InvalidInput(
                f"The repository {url} could not be read: {last_line(words)}"
            ) from None


def last_line(words: str) -> str:
    lines = [line.strip() for line in words.splitlines() if line.strip()]
    return (lines[-1] if lines else words)[:500]


@contextmanager
def one_at_a_time(link: RepoLink) -> Iterator[None]:
    """A session advisory lock per link: the beat, a webhook and a button press never sync the
    same space at once (a second one is told so, and changes nothing)."""
    key = LOCK_BASE + link.pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        row = cursor.fetchone()
    if not row or not row[0]:
        raise Conflict("A sync of this space is already running; try again in a minute.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])

"""The git command line, run without a shell, with a timeout and with no prompts (a remote that
wants a password fails at once instead of waiting for a terminal)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


class GitError(Exception):
    """A git command failed; `message` is git's own words, with any credential taken out."""

    def __init__(self, message: str, *, args: Sequence[str] = ()):
        self.message = message
        self.args_run = list(args)
        super().__init__(message)


def executable() -> str:
    found = shutil.which("git")
    if not found:
        raise GitError("git is not installed on this server.")
    return found


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - git reads ~/.gitconfig only
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    env.update(extra or {})
    return env


def run(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 120,
    check: bool = True,
    secrets: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `git <args>`; raises GitError (with `secrets` blanked out of git's words) on failure."""
    command = [executable(), "-c", "core.quotePath=false", *args]
    try:
        result = subprocess.run(  # noqa: S603 - a fixed executable, arguments as a list
            command,
            cwd=cwd,
            env=base_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout} seconds.", args=args) from None
    except OSError as exc:
        raise GitError(f"git could not be started ({exc.strerror}).", args=args) from None
    if check and result.returncode != 0:
        words = (result.stderr or result.stdout).strip()
        for secret in secrets:
            if secret:
                words = words.replace(secret, "***")
        raise GitError(words or f"git {args[0]} failed.", args=args)
    return result

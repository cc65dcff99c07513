"""`manage.py drift --repo NAME --since REV`: mark records anchored to paths changed since REV."""

import subprocess

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import InvalidInput
from apps.reminders import services
from apps.reminders.models import DriftReport


def _git(args: list[str], cwd: str) -> str:
    try:
        # git from PATH like any developer tool; fixed arguments, no shell.
        result = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except FileNotFoundError:
        raise CommandError("git is not installed.") from None
    if result.returncode != 0:
        raise CommandError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Command(BaseCommand):
    help = "Report the files changed since a revision (git diff --name-only) as drift."

    def add_arguments(self, parser):
        parser.add_argument("--repo", required=True, help="Repository name, e.g. acme/payments")
        parser.add_argument("--since", required=True, help="The revision to diff from")
        parser.add_argument("--until", default="HEAD", help="The revision to diff to (HEAD)")
        parser.add_argument("--path", default=".", help="The git checkout (current directory)")

    def handle(self, *args, repo, since, until, path, **options):
        for rev in (since, until):
            if rev.startswith("-"):
                raise CommandError(f"Not a revision: {rev!r}")
        commit = _git(["rev-parse", "--verify", f"{until}^{{commit}}"], path).strip()
        _git(["rev-parse", "--verify", f"{since}^{{commit}}"], path)
        changed = [
            line
            for line in _git(["diff", "--name-only", f"{since}..{until}"], path).splitlines()
            if line.strip()
        ]
        try:
            report, created = services.drift_report(
                repository=repo,
                commit=commit,
                changed_paths=changed,
                source=DriftReport.Source.COMMAND,
            )
        except InvalidInput as exc:
            raise CommandError(f"{exc}: {getattr(exc, 'details', '')}") from None
        if not created:
            self.stdout.write(f"{repo}@{commit[:12]} was already reported; nothing changed.")
            return
        self.stdout.write(
            f"{len(changed)} changed path(s) in {repo}@{commit[:12]}: "
            f"{report.suspect_count} record(s) marked suspect, "
            f"{len(report.unmatched_paths)} path(s) not covered by any record."
        )

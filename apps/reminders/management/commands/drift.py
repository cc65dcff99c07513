"""`manage.py drift --repo NAME --since REV`: mark records anchored to paths changed since REV."""

import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import InvalidInput
from apps.records import evidence
from apps.records.anchors import normalise_path
from apps.records.models import SuspectReason
from apps.reminders import services
from apps.reminders.models import DriftReport

SHOWN = 20


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
        raise CommandError("git is not installed (or not on PATH).") from None
    if result.returncode != 0:
        raise CommandError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Command(BaseCommand):
    help = (
        "Tell contextkb which files changed in a git checkout since a revision: records whose "
        "anchors match a changed path become suspect, with a reason naming the commit and the "
        "paths. Run it in CI after a merge, or by hand. Reporting the same commit again changes "
        "nothing."
    )
    epilog = (
        "Examples: `manage.py drift --repo acme/payments --since origin/main~1` (the last "
        "merge), `--since v2.3.0` (everything since a tag), `--since $CI_COMMIT_BEFORE_SHA` "
        "(GitLab CI), `--since ${{ github.event.before }}` (GitHub Actions). Without git access, "
        "CI can POST the changed paths to /api/v1/drift/ instead."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = self.epilog
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--repo", required=True, help="Repository name as reasons show it, e.g. acme/payments"
        )
        parser.add_argument(
            "--since", required=True, help="The revision to diff from (commit, tag or branch)"
        )
        parser.add_argument(
            "--until", default="HEAD", help="The revision to diff to (default: HEAD)"
        )
        parser.add_argument(
            "--path", default=".", help="The git checkout (default: the current directory)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the changed paths and the records they would mark; change nothing",
        )

    def handle(self, *args, repo, since, until, path, dry_run, **options):
        for rev in (since, until):
            if rev.startswith("-"):
                raise CommandError(f"Not a revision: {rev!r}")
        if not Path(path).is_dir():
            raise CommandError(f"{path} is not a directory.")
        try:
            inside = _git(["rev-parse", "--is-inside-work-tree"], path).strip() == "true"
        except CommandError:
            inside = False
        if not inside:
            raise CommandError(
                f"{Path(path).resolve()} is not inside a git checkout: run the command there, "
                "or pass --path."
            )
        commit = _git(["rev-parse", "--verify", f"{until}^{{commit}}"], path).strip()
        _git(["rev-parse", "--verify", f"{since}^{{commit}}"], path)
        # Paths relative to the repository root (what anchors describe), wherever we run from.
        # NUL-separated, so no path is quoted or escaped; renames count as both paths.
        output = _git(["diff", "--name-only", "-z", "--no-renames", since, until], path)
        changed = [name for name in output.split("\0") if name]
        if dry_run:
            self._dry_run(repo, commit, changed)
            return
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
        reasons = (
            SuspectReason.objects.filter(
                cause=SuspectReason.Cause.CODE_CHANGED,
                details__repository=repo,
                details__commit=commit,
            )
            .select_related("record__space")
            .order_by("record__space__slug", "record__kind", "record__number")
        )
        for reason in reasons[:SHOWN]:
            record = reason.record
            self.stdout.write(f"  {record.space.slug}/{record.key} {record.title}")
        if report.suspect_count > SHOWN:
            self.stdout.write(f"  … and {report.suspect_count - SHOWN} more")

    def _dry_run(self, repo: str, commit: str, changed: list[str]) -> None:
        self.stdout.write(f"{len(changed)} changed path(s) in {repo}@{commit[:12]} (dry run):")
        for line in changed[:SHOWN]:
            self.stdout.write(f"  {line}")
        if len(changed) > SHOWN:
            self.stdout.write(f"  … and {len(changed) - SHOWN} more")
        if DriftReport.objects.filter(repository=repo, commit=commit).exists():
            self.stdout.write("This commit was already reported: a real run would change nothing.")
            return
        paths = [p for p in (normalise_path(c) for c in changed) if p]
        records = list(
            evidence.anchored_records(paths)
            .select_related("space")
            .order_by("space__slug", "kind", "number")
        )
        self.stdout.write(f"{len(records)} record(s) would be marked suspect:")
        for record in records[:SHOWN]:
            self.stdout.write(f"  {record.space.slug}/{record.key} {record.title}")
        if len(records) > SHOWN:
            self.stdout.write(f"  … and {len(records) - SHOWN} more")

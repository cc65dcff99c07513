"""manage.py import_markdown PATH --space SLUG: import a folder (or zip) of ADRs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Space, User
from apps.core.errors import ServiceError
from apps.interchange import services, sources
from apps.interchange.management.commands._help import HelpFormatter
from apps.records.models import Record

EPILOG = """\
what is read:
  Each markdown file becomes a record: title (front matter, H1, else the file name), status
  (front matter, Status: line, a status table such as | Status | Date | Author(s) |, or a
  ## Status section; emoji and any case; the words as written are kept as import metadata,
  never as tags), date, deciders, the number in its file name (0012-x.md becomes DEC-12 when
  that number is free) and the body (less the H1 the title came from). "Superseded by",
  "Superseded [X]", "Superseded: 2019-12-19 by", "Supersedes", "Amended by", "Amends" links
  (relative, reference-style, GitHub URLs, plain "superseded by ADR-12", front-matter
  superseded_by:) become typed links; other links between the files become relates_to.
  README.md/index.md and ADR templates are skipped. A record's review clock starts from its
  own date (or, in a git checkout, its last commit), so an old unverified ADR is due at once.

re-running:
  Files are matched to records by their path (or a front-matter id, or the key in a
  contextkb export), so importing the same folder again updates the same records. Only what
  changed in a file since the last import is written; a file that changed a field someone also
  changed in contextkb is reported and left alone (--overwrite-edits lets the file win).

the report (stdout):
  created / updated / unchanged / skipped (with the reason: not UTF-8, binary, empty, too
  large, bad YAML front matter, symlink, zip-slip, ...), links created, links whose target
  is missing (file:line), unknown statuses and other notes; the records updated (and, with
  -v 2, those created). The progress bar goes to stderr.

examples:
  manage.py import_markdown docs/adr --space payments --owner ann@example.com --dry-run
  manage.py import_markdown docs/adr --space payments --owner ann@example.com
  manage.py import_markdown adr.zip --space payments --kind constraint
"""


class Command(BaseCommand):
    help = (
        "Import architecture decision records (Nygard/adr-tools, MADR, log4brains or plain "
        "markdown) from a folder or a .zip into a space. Re-running updates the same records."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EPILOG)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help="A folder (searched recursively) or a .zip file.")
        parser.add_argument("--space", required=True, help="Slug of the space to import into.")
        parser.add_argument(
            "--kind",
            default=Record.Kind.DECISION,
            choices=Record.Kind.values,
            help="Kind of record to create (default: decision).",
        )
        parser.add_argument(
            "--owner",
            help="Email of a member of the space: owns the new records (a re-import keeps the "
            "owners set in the app).",
        )
        parser.add_argument(
            "--as-user",
            help="Email of the user the import acts as (default: a superuser, or the --owner).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would happen; save nothing."
        )
        parser.add_argument(
            "--overwrite-edits",
            action="store_true",
            help="Let the files win over edits made in contextkb since the last import (by "
            "default such files are reported and left alone).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(
        self,
        *args,
        path,
        space,
        kind,
        owner,
        as_user,
        dry_run,
        overwrite_edits,
        no_progress,
        **options,
    ):
        target = Space.objects.filter(slug=space).first()
        if target is None:
            raise CommandError(f"No space with the slug {space!r}.")
        owner_user = None
        if owner:
            owner_user = User.objects.filter(email__iexact=owner).first()
            if owner_user is None:
                raise CommandError(f"No user with the email {owner!r}.")
        actor = self._actor(as_user, owner_user)
        files = self._read(path)
        bars: dict[str, tqdm] = {}
        progress = None if no_progress else partial(self._progress, bars)
        try:
            summary = services.import_files(
                space=target,
                files=files,
                actor=actor,
                kind=kind,
                owner=owner_user,
                dry_run=dry_run,
                overwrite_edits=overwrite_edits,
                progress=progress,
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        finally:
            for bar in bars.values():
                bar.close()
        for line in summary.lines(verbose=options["verbosity"] >= 2):
            self.stdout.write(line)

    def _read(self, path: str) -> list[sources.SourceFile]:
        source = Path(path)
        try:
            if source.is_file() and source.suffix.lower() == ".zip":
                return sources.read_zip(source.read_bytes())
            if source.is_dir():
                return sources.read_folder(source)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        raise CommandError(f"{path} is neither a folder nor a .zip file.")

    def _progress(self, bars: dict[str, tqdm], phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            # One phase at a time: finish the previous bar before starting the next.
            for previous in bars.values():
                previous.close()
            bar = bars[phase] = tqdm(
                total=total,
                desc=phase,
                unit="file" if phase == "records" else "link",
                file=self.stderr._out,
                leave=True,
            )
        bar.update(done - bar.n)

    def _actor(self, as_user: str | None, owner: User | None) -> User:
        if as_user:
            user = User.objects.filter(email__iexact=as_user).first()
            if user is None:
                raise CommandError(f"No user with the email {as_user!r}.")
            return user
        if owner is not None:
            return owner
        user = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("Pass --as-user (or --owner): there is no superuser to act as.")
        return user

"""manage.py export_markdown --space SLUG OUT_DIR: write a space's records as markdown."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Space, User
from apps.core.errors import ServiceError
from apps.interchange import services
from apps.interchange.management.commands._help import HelpFormatter

EPILOG = """\
what is written:
  One markdown file per record (at the path it was imported from, else KEY-title.md) with YAML
  front matter: key, kind, title, status, date, decision-makers, summary, owner (email or
  team:slug), tags, anchors, reversibility, impact, valid_until, review dates, archived, and
  links by key (with their notes); then the body, unchanged. Plus index.md listing them all.
  Existing files with the same names are overwritten; nothing else in OUT_DIR is touched.

round trip:
  manage.py export_markdown --space payments out/
  manage.py import_markdown out/ --space payments-copy   # the same records, keys and links
"""


class Command(BaseCommand):
    help = "Export every record of a space as MADR-style markdown (YAML front matter) + index.md."

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EPILOG)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("out_dir", help="Folder to write into (created if missing).")
        parser.add_argument("--space", required=True, help="Slug of the space to export.")
        parser.add_argument(
            "--as-user", help="Email of the user the export acts as (default: a superuser)."
        )
        parser.add_argument(
            "--skip-archived", action="store_true", help="Leave archived records out."
        )

    def handle(self, *args, out_dir, space, as_user, skip_archived, **options):
        target = Space.objects.filter(slug=space).first()
        if target is None:
            raise CommandError(f"No space with the slug {space!r}.")
        if as_user:
            actor = User.objects.filter(email__iexact=as_user).first()
        else:
            actor = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if actor is None:
            raise CommandError("Pass --as-user with the email of a member of the space.")
        try:
            files = services.export_space(
                space=target, actor=actor, include_archived=not skip_archived
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        root = Path(out_dir).resolve()
        for exported in files:
            destination = (root / exported.path).resolve()
            if not destination.is_relative_to(root):
                raise CommandError(f"Refusing to write outside {root}: {exported.path}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(exported.content, encoding="utf-8")
        self.stdout.write(f"Wrote {len(files) - 1} records and index.md to {root}.")

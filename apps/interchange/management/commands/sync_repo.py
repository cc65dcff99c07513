"""manage.py sync_repo: pull a space's linked repository folder and push app edits back."""

from django.core.management.base import BaseCommand, CommandError

from apps.interchange import sync
from apps.interchange.models import RepoLink


class Command(BaseCommand):
    help = (
        "Sync spaces with their linked git folders (docs/interchange.md): pull the branch into "
        "the space (edits made in the app are never overwritten; a file both sides changed is "
        "listed for a person), then push app edits as commits on the push branch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--space", help="Slug of one space (default: every linked space).")
        parser.add_argument("--pull-only", action="store_true", help="Pull, do not push.")
        parser.add_argument("--push-only", action="store_true", help="Push, do not pull.")

    def handle(self, *args, **options):
        links = RepoLink.objects.select_related("space").order_by("space__slug")
        if options["space"]:
            links = links.filter(space__slug=options["space"])
            if not links.exists():
                raise CommandError(f"Space {options['space']!r} is not linked to a repository.")
        failed = False
        for link in links:
            if options["pull_only"]:
                outcomes = [sync.repo_pull(link=link)]
            elif options["push_only"]:
                outcomes = [sync.repo_push(link=link)]
            else:
                outcomes = sync.repo_sync(link=link)
            for outcome in outcomes:
                self.stdout.write(f"{link.space.slug}: [{outcome.result}] {outcome.message}")
                for waiting in outcome.waiting:
                    self.stdout.write(f"  waiting: {waiting['path']} {waiting['key']}")
                failed = failed or outcome.result == RepoLink.Result.FAILED
        if failed:
            raise CommandError("At least one sync failed (see above).")

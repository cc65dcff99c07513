"""Create an API token from the command line; prints the plain token once."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Space, User
from apps.core.errors import ServiceError


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username of the token's owner.")
        parser.add_argument("--name", required=True, help="What the token is for.")
        parser.add_argument("--scope", choices=ApiToken.Scope.values, default=ApiToken.Scope.READ)
        parser.add_argument(
            "--space",
            action="append",
            default=[],
            dest="spaces",
            help="Slug of a space the token may see (repeatable; none: all the user's spaces).",
        )
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until it expires (default never)."
        )

    def handle(self, *args, user, name, scope, spaces, expires_days, **options):
        owner = User.objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}.")
        found = {sp.slug: sp for sp in Space.objects.filter(slug__in=spaces)}
        missing = [slug for slug in spaces if slug not in found]
        if missing:
            raise CommandError(f"No space {', '.join(missing)}.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expires_at = timezone.now() + dt.timedelta(days=expires_days) if expires_days else None
        try:
            token, plain = services.token_create(
                user=owner,
                name=name,
                scope=scope,
                spaces=list(found.values()),
                expires_at=expires_at,
            )
        except ServiceError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from None
        self.stdout.write(plain)
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}…, {token.scope}) for {owner.username}. "
            "Store it now: it is not shown again."
        )

"""Create an API token from the command line; prints the plain token once."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Space, User
from apps.core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Create an API token for a user. The plain token goes to standard output, alone on one "
        "line, so scripts can capture it; it is shown only this once (only a hash is stored). "
        "Example: python manage.py create_api_token --user alice --name ci --scope read_write "
        "--space payments --expires-days 90 > token.txt. Revoke tokens on the Tokens page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username of the token's owner.")
        parser.add_argument(
            "--name", required=True, help="What the token is for, e.g. 'release script'."
        )
        parser.add_argument(
            "--scope",
            choices=ApiToken.Scope.values,
            default=ApiToken.Scope.READ,
            help="read (default): look only; read_write: also create and change records, "
            "within what the user may do.",
        )
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
            problems = "; ".join(
                f"{field}: {' '.join(map(str, messages))}"
                for field, messages in (exc.details or {}).items()
            )
            raise CommandError(f"{exc.message} {problems}".strip()) from None
        self.stdout.write(plain)
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}…, {token.scope}) for {owner.username}. "
            "Store it now: it is not shown again."
        )

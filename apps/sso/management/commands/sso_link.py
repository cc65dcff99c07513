"""Link an existing local account to an SSO identity (after a refused first sign-in)."""

from __future__ import annotations

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Link a local user to the SSO identity with this reference (the subject shown on the "
        "refused sign-in page); their next SSO sign-in lands in that account."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("reference", help="The provider's subject (sub claim)")

    def handle(self, *args, username, reference, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        provider = settings.SSO_PROVIDER_ID
        existing = SocialAccount.objects.filter(provider=provider, uid=reference).first()
        if existing is not None:
            if existing.user_id == user.pk:
                self.stdout.write(f"{username} is already linked to {reference}.")
                return
            raise CommandError(f"{reference} is already linked to {existing.user.username}.")
        SocialAccount.objects.create(user=user, provider=provider, uid=reference, extra_data={})
        self.stdout.write(f"Linked {username} to SSO identity {reference}.")

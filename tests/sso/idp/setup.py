"""Prepare the test provider's database: tables, the users of the control file, and the client
registration for contextkb (argv: client id, client secret, redirect URI)."""

from __future__ import annotations

import sys

import django


def main(client_id: str, client_secret: str, redirect_uri: str) -> None:
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from oauth2_provider.models import Application

    from tests.sso.idp.validators import control

    call_command("migrate", verbosity=0)
    for username, person in control().get("users", {}).items():
        user = User.objects.create_user(
            username=username,
            email=person["email"],
            password=person["password"],
            first_name=person.get("first_name", ""),
            last_name=person.get("last_name", ""),
        )
        user.save()
    Application.objects.create(
        name="contextkb",
        client_id=client_id,
        client_secret=client_secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=False,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])

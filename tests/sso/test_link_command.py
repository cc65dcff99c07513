"""`manage.py sso_link`: how an administrator links an existing account to an SSO identity."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.management import CommandError, call_command

from tests.factories import UserFactory


def test_links_once_and_refuses_to_move_an_identity(db, capsys):
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    call_command("sso_link", "ann", "sub-123")
    assert SocialAccount.objects.get(uid="sub-123").user == ann
    call_command("sso_link", "ann", "sub-123")
    assert "already linked" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already linked to ann"):
        call_command("sso_link", "ben", "sub-123")
    assert not SocialAccount.objects.filter(user=ben).exists()


def test_an_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("sso_link", "nobody", "sub-1")
    assert not SocialAccount.objects.exists()


def test_sso_urls_are_404_while_sso_is_not_configured(client, db):
    assert client.post("/sso/oidc/login/").status_code == 404
    assert client.get("/sso/oidc/callback/?code=x&state=y").status_code == 404

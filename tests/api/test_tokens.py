"""Tokens: the web page, the management command, and what a token can do."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.accounts.models import ApiToken
from tests.api.conftest import MODEL_BACKEND, bearer
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db


def test_tokens_page_shows_a_new_token_once_and_lists_it(client, space, owner):
    client.force_login(owner, backend=MODEL_BACKEND)
    response = client.post(
        "/accounts/tokens/",
        {"name": "CI pipeline", "scope": "read_write", "spaces": [space.pk], "expires_in_days": 30},
        follow=True,
    )
    # Post/redirect/get: reloading the page that shows the token creates no second one.
    assert response.redirect_chain == [("/accounts/tokens/", 302)]
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = ApiToken.objects.get(user=owner)
    plain = html.split('id="plain-token" class="mono" value="')[1].split('"')[0]
    assert plain.startswith("ckb_") and token.token_hash == ApiToken.hash(plain)
    assert (token.name, token.scope, list(token.spaces.all())) == (
        "CI pipeline",
        "read_write",
        [space],
    )
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    # The list shows the prefix and never the plain token again.
    listing = client.get("/accounts/tokens/").content.decode()
    assert "CI pipeline" in listing and token.prefix in listing and plain not in listing
    assert ApiToken.objects.filter(user=owner).count() == 1
    # It works, then revoking it stops it at once.
    assert client.get("/api/v1/me/", **bearer(plain)).status_code == 200
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert client.get("/api/v1/me/", **bearer(plain)).status_code == 401


def test_tokens_page_refuses_other_peoples_tokens_and_bad_input(client, space, owner, teammate):
    theirs, _ = make_token(teammate)
    client.force_login(owner, backend=MODEL_BACKEND)
    assert client.post(f"/accounts/tokens/{theirs.pk}/revoke/").status_code == 404
    response = client.post("/accounts/tokens/", {"name": "", "scope": "admin"})
    assert response.status_code == 200
    assert not ApiToken.objects.filter(user=owner).exists()
    assert client.get("/accounts/tokens/", follow=False).status_code == 200
    client.logout()
    assert client.get("/accounts/tokens/").status_code == 302


def test_create_api_token_command_prints_a_working_token(space, owner, capsys, api):
    call_command(
        "create_api_token",
        "--user",
        "owner",
        "--name",
        "agent",
        "--scope",
        "read",
        "--space",
        "payments",
    )
    plain = capsys.readouterr().out.strip()
    record = make_record(space=space, actor=owner)
    assert api.get(f"/api/v1/records/{record.pk}/", **bearer(plain)).status_code == 200
    write = api.patch(
        f"/api/v1/records/{record.pk}/", {"title": "x"}, HTTP_IF_MATCH='"1"', **bearer(plain)
    )
    assert write.status_code == 403
    with pytest.raises(CommandError, match="No space"):
        call_command("create_api_token", "--user", "owner", "--name", "x", "--space", "nope")
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_token", "--user", "ghost", "--name", "x")


def test_token_never_sees_more_than_its_user(api, space, owner, outsider, other_space):
    mine = make_record(space=space, actor=owner)
    make_record(space=other_space, actor=outsider)
    # A token listing a space its user is not a member of still sees nothing there.
    _, plain = make_token(owner, scope=ApiToken.Scope.READ_WRITE, spaces=[other_space])
    assert api.get("/api/v1/records/", **bearer(plain)).json()["count"] == 0
    assert api.get(f"/api/v1/records/{mine.pk}/", **bearer(plain)).status_code == 404
    _, all_mine = make_token(owner)
    results = api.get("/api/v1/records/", **bearer(all_mine)).json()["results"]
    assert [r["key"] for r in results] == [mine.key]


def test_a_deactivated_users_token_stops_working(api, space, owner):
    _, plain = make_token(owner)
    owner.is_active = False
    owner.save()
    assert api.get("/api/v1/me/", **bearer(plain)).status_code == 401
    with pytest.raises(CommandError, match="deactivated"):
        call_command("create_api_token", "--user", "owner", "--name", "new")
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_a_token_cannot_open_the_tokens_page_or_mint_tokens(client, space, owner):
    _, plain = make_token(owner, scope=ApiToken.Scope.READ_WRITE)
    page = client.get("/accounts/tokens/", **bearer(plain))
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    client.post("/accounts/tokens/", {"name": "escalated", "scope": "read_write"}, **bearer(plain))
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_tokens_page_lists_active_tokens_first_and_marks_expired_and_revoked(client, space, owner):
    past = timezone.now() - dt.timedelta(days=1)
    make_token(owner, name="old-revoked", revoked_at=past)
    make_token(owner, name="old-expired", expires_at=past)
    make_token(owner, name="current")
    client.force_login(owner, backend=MODEL_BACKEND)
    html = client.get("/accounts/tokens/").content.decode()
    assert html.index("current") < html.index("old-revoked")
    assert "expired</span>" in html and f"Revoked {past:%Y-%m-%d}" in html
    # Revoked tokens have no Revoke button; the others do.
    assert html.count(">Revoke</button>") == 2


def test_create_api_token_command_validates_its_options(space, owner, capsys):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("create_api_token", "--user", "owner", "--name", "x", "--expires-days", "0")
    with pytest.raises(CommandError, match="name"):
        call_command("create_api_token", "--user", "owner", "--name", "  ")
    assert not ApiToken.objects.exists()
    call_command("create_api_token", "--user", "owner", "--name", "ci", "--expires-days", "7")
    token = ApiToken.objects.get()
    assert dt.timedelta(days=6) < token.expires_at - timezone.now() <= dt.timedelta(days=7)
    assert token.token_hash == ApiToken.hash(capsys.readouterr().out.strip())

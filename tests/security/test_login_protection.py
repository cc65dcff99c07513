"""Sign-in is audited and brute force is stopped per account and per address."""

import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory


def _kinds(**filters):
    return list(AuditEvent.objects.filter(**filters).values_list("kind", flat=True))


def test_successful_and_failed_sign_ins_are_audited_with_address(login, owner):
    assert login("owner", "wrong-password").status_code == 200
    assert login("owner", PASSWORD).status_code == 302
    failed = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    assert failed.username == "owner"
    assert failed.ip == "203.0.113.7"
    assert failed.actor is None
    ok = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN)
    assert ok.actor == owner
    assert ok.request_id  # tagged with the request that did it


def test_five_wrong_passwords_lock_the_account_even_with_the_right_one(login, owner, settings):
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 5
    for _ in range(5):
        login("owner", "guess")
    response = login("owner", PASSWORD)
    assert response.status_code == 200  # the form again, not signed in
    assert "_auth_user_id" not in response.client.session
    assert "Too many failed sign-in attempts for this account" in response.content.decode()
    assert _kinds(kind=AuditEvent.Kind.LOGIN_BLOCKED) == [AuditEvent.Kind.LOGIN_BLOCKED]


def test_lock_is_per_account_and_lifts_after_the_window(login, owner, teammate, settings):
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 3
    settings.LOGIN_LOCKOUT_WINDOW = 600
    for _ in range(3):
        login("owner", "guess")
    # Another person on the same network is not affected.
    assert login("teammate", PASSWORD).status_code == 302
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=601)):
        assert login("owner", PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_is_locked(client, login, owner, settings):
    settings.LOGIN_LOCKOUT_IP_FAILURES = 4
    for name in ("alice", "bob", "carol", "dave"):
        login(name, "guess", ip="198.51.100.9")
    response = login("owner", PASSWORD, ip="198.51.100.9")
    assert "_auth_user_id" not in client.session
    assert "your network address" in response.content.decode()
    # The owner can still sign in from elsewhere.
    assert login("owner", PASSWORD, ip="192.0.2.44").status_code == 302


def test_admin_login_is_protected_too(client, owner, settings):
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 2
    owner.is_staff = owner.is_superuser = True
    owner.save()
    for _ in range(2):
        client.post("/admin/login/", {"username": "owner", "password": "nope"})
    refused = client.post("/admin/login/", {"username": "owner", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    # The admin's page says why, like the site's sign-in page.
    assert "ask an administrator" in refused.content.decode()


def test_someone_guessing_from_elsewhere_cannot_lock_the_owner_out(client, login, owner, settings):
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 5
    attacker, home = "198.51.100.66", "203.0.113.7"
    start = timezone.now()
    # A patient attacker: 5 guesses every 15 minutes for two hours, always just under the limits.
    for quarter in range(8):
        with time_machine.travel(start + timezone.timedelta(minutes=15 * quarter), tick=False):
            for _ in range(6):
                login("owner", "guess", ip=attacker)
            refused = login("owner", PASSWORD, ip=attacker)
            assert "Too many failed sign-in attempts for this account" in refused.content.decode()
            # Meanwhile the owner signs in from their own network every time.
            assert login("owner", PASSWORD, ip=home).status_code == 302
            client.logout()


def test_guessing_from_many_addresses_locks_the_account_but_not_where_its_user_works(
    client, login, owner, settings
):
    settings.LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES = 10
    office = "192.0.2.10"
    assert login("owner", PASSWORD, ip=office).status_code == 302  # a known address
    client.logout()
    for n in range(10):
        login("owner", "guess", ip=f"198.51.100.{n + 1}")
    # A new address with the right password is refused: the account is under attack ...
    response = login("owner", PASSWORD, ip="198.51.100.200")
    assert "_auth_user_id" not in client.session
    assert "Too many failed sign-in attempts for this account" in response.content.decode()
    assert "ask an administrator" in response.content.decode()
    # ... but the owner's usual network still gets in.
    assert login("owner", PASSWORD, ip=office).status_code == 302


def test_refused_attempts_while_locked_do_not_extend_the_lock(login, owner, settings):
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 3
    settings.LOGIN_LOCKOUT_WINDOW = 600
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            login("owner", "guess")
    with time_machine.travel(start + timezone.timedelta(seconds=300), tick=False):
        for _ in range(20):  # hammering the locked form
            response = login("owner", "guess")
        assert "Try again in 5 minutes" in response.content.decode()
    with time_machine.travel(start + timezone.timedelta(seconds=601), tick=False):
        assert login("owner", PASSWORD).status_code == 302


def test_an_administrator_lists_and_lifts_locks(login, owner, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 3
    for _ in range(3):
        login("owner", "guess")
    out = StringIO()
    call_command("signin_unlock", stdout=out)
    assert "owner from 203.0.113.7" in out.getvalue()
    assert "15 min" in out.getvalue()
    call_command("signin_unlock", "owner", stdout=StringIO())
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_UNLOCKED)
    assert (event.username, event.path) == ("owner", "manage.py signin_unlock")
    out = StringIO()
    call_command("signin_unlock", stdout=out)
    assert out.getvalue().startswith("No account or address is locked out.")
    assert login("owner", PASSWORD).status_code == 302
    # The count starts again from zero.
    response = login("owner", "guess")
    assert "Too many" not in response.content.decode()


def test_weak_new_passwords_are_refused_with_the_reason(client, owner):
    client.force_login(owner)
    for weak, reason in [
        ("short1", "too short"),
        ("password123", "too common"),
        ("48213907654321", "entirely numeric"),
        ("owner1234", "too similar to the username"),
    ]:
        response = client.post(
            "/me/password/",
            {"old_password": PASSWORD, "new_password1": weak, "new_password2": weak},
        )
        assert response.status_code == 200, weak
        assert reason in response.content.decode(), weak
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    strong = "correct-horse-battery-9"
    done = client.post(
        "/me/password/",
        {"old_password": PASSWORD, "new_password1": strong, "new_password2": strong},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(strong)


def test_hostile_sign_in_input_is_a_form_error_never_a_crash(client, owner):
    for username, password in [
        ("owner\x00", "x"),
        ("o" * 10_000, "x"),
        ("owner", "p" * 100_000),
        ("' OR 1=1 --", "x"),
        ("", ""),
    ]:
        response = client.post(
            "/accounts/login/",
            {"username": username, "password": password},
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR="not-an-ip, <script>",
        )
        assert response.status_code == 200, username[:20]
        assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.exclude(ip="203.0.113.9").exists()

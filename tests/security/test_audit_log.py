"""Tokens, denials and overrides leave a trace an admin can read."""

import datetime as dt

from django.utils import timezone

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from tests.factories import UserFactory, make_record


def test_token_lifecycle_is_audited_and_a_revoked_token_in_use_is_flagged(owner, space):
    token, plain = accounts.token_create(user=owner, name="ci bot", spaces=[space])
    accounts.token_revoke(token=token, actor=owner)
    assert accounts.token_authenticate(plain) is None
    events = {e.kind: e for e in AuditEvent.objects.filter(token=token)}
    assert set(events) == {
        AuditEvent.Kind.TOKEN_CREATED,
        AuditEvent.Kind.TOKEN_REVOKED,
        AuditEvent.Kind.TOKEN_REVOKED_USED,
    }
    assert events[AuditEvent.Kind.TOKEN_CREATED].actor == owner
    assert events[AuditEvent.Kind.TOKEN_CREATED].details["spaces"] == ["payments"]
    assert plain not in str(events[AuditEvent.Kind.TOKEN_CREATED].__dict__)
    assert events[AuditEvent.Kind.TOKEN_REVOKED_USED].username == "owner"


def test_expired_token_in_use_is_flagged(owner):
    token, plain = accounts.token_create(
        user=owner, name="short", expires_at=timezone.now() + dt.timedelta(seconds=30)
    )
    token.expires_at = timezone.now() - dt.timedelta(seconds=1)
    token.save()
    assert accounts.token_authenticate(plain) is None
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.TOKEN_REVOKED_USED)
    assert event.message.startswith("Expired token")


def test_a_forbidden_page_is_audited(client, viewer):
    client.force_login(viewer)
    response = client.get("/admin/auth/group/")  # not staff: redirect, not 403
    assert response.status_code == 302
    # A CSRF failure is a 403 from Django itself.
    csrf_client = client.__class__(enforce_csrf_checks=True)
    csrf_client.force_login(viewer)
    assert csrf_client.post("/accounts/logout/").status_code == 403
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PERMISSION_DENIED)
    assert event.actor == viewer
    assert event.message == "POST /accounts/logout/"


def test_audit_log_is_read_only_in_the_admin(client, owner):
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    token, _ = accounts.token_create(user=owner, name="x")
    client.force_login(staff)
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert "API token created" in listing.content.decode()
    event = AuditEvent.objects.get(token=token)
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403


def test_exporting_a_space_is_audited(space, owner):
    from apps.interchange import services as interchange
    from tests.factories import make_record

    make_record(space=space, actor=owner, title="Exported decision")
    files = interchange.export_space(space=space, actor=owner)
    assert len(files) == 2
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.EXPORT)
    assert (event.actor, event.space) == (owner, space)
    assert event.details == {"records": 1, "include_archived": True}


def test_api_denials_and_a_revoked_token_are_audited_with_address_and_path(
    client, space, owner, viewer
):
    from tests.factories import make_token

    record = make_record(space=space, actor=owner, title="Guarded")
    _, read_only = make_token(viewer, spaces=[space])
    denied = client.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": "Changed"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_only}",
        HTTP_IF_MATCH='"1"',
        REMOTE_ADDR="198.51.100.20",
    )
    assert denied.status_code == 403
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PERMISSION_DENIED)
    assert (event.actor, event.ip) == (viewer, "198.51.100.20")
    assert event.path == f"/api/v1/records/{record.pk}/"
    assert event.request_id == denied["X-Request-ID"]

    token, plain = make_token(owner, spaces=[space])
    accounts.token_revoke(token=token, actor=owner)
    refused = client.get(
        "/api/v1/records/", HTTP_AUTHORIZATION=f"Bearer {plain}", REMOTE_ADDR="198.51.100.21"
    )
    assert refused.status_code == 401
    used = AuditEvent.objects.get(kind=AuditEvent.Kind.TOKEN_REVOKED_USED)
    assert (used.token, used.ip, used.path) == (token, "198.51.100.21", "/api/v1/records/")
    record.refresh_from_db()
    assert record.title == "Guarded"


def test_old_audit_events_are_pruned_nightly_and_recent_ones_kept(owner, settings):
    from django.conf import settings as django_settings

    from apps.audit import tasks
    from apps.audit.services import audit_log

    now = timezone.now()
    old = audit_log(kind=AuditEvent.Kind.LOGIN, actor=owner)
    AuditEvent.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=400))
    recent = audit_log(kind=AuditEvent.Kind.LOGIN, actor=owner)
    AuditEvent.objects.filter(pk=recent.pk).update(created_at=now - dt.timedelta(days=300))
    settings.AUDIT_RETENTION_DAYS = 0  # keep forever
    assert tasks.prune() == 0
    settings.AUDIT_RETENTION_DAYS = 365
    assert tasks.prune() == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-prune"]
    assert entry["task"] == tasks.prune.name and entry["options"]["expires"]

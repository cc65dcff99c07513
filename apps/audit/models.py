"""The security audit log: who signed in (or failed to), token lifecycle, denials, exports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One security-relevant event; append-only (the admin shows it read-only)."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        LOGIN_BLOCKED = "login_blocked", "Sign-in refused (locked out)"
        LOGIN_UNLOCKED = "login_unlocked", "Sign-in lock lifted by an administrator"
        LOGOUT = "logout", "Signed out"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        TOKEN_REVOKED_USED = "token_revoked_used", "Revoked or expired API token used"
        PERMISSION_DENIED = "permission_denied", "Permission denied"
        EXPORT = "export", "Space exported"
        SECRET_OVERRIDE = "secret_override", "Secret scan overridden by an admin"
        OAUTH_TOKEN_ISSUED = "oauth_token_issued", "OAuth client connected"
        OAUTH_TOKEN_REVOKED = "oauth_token_revoked", "OAuth client disconnected"
        AGENT_REFUSED = "agent_refused", "Agent call outside its declared scope refused"

    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # The signed-in user (or a token's user); null for anonymous requests and failed sign-ins.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The username typed at a sign-in (kept even when no such user exists).
    username = models.CharField(max_length=150, blank=True)
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    space = models.ForeignKey(
        "accounts.Space", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)
    message = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin list, newest first, filtered by kind.
            models.Index(fields=["kind", "-created_at"], name="audit_kind_created_idx"),
            # Login throttling: recent failures for one username / one address.
            models.Index(fields=["username", "kind", "created_at"], name="audit_username_idx"),
            models.Index(fields=["ip", "kind", "created_at"], name="audit_ip_idx"),
        ]

    def __str__(self) -> str:
        who = self.actor or self.username or self.ip or "anonymous"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()} ({who})"

"""People, teams, spaces, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

TOKEN_PREFIX = "ckb_"  # noqa: S105 - a public prefix, not a secret


class User(AbstractUser):  # type: ignore[django-manager-missing]  # oauth2_provider is untyped
    """A person who signs in; owns records and receives digests."""

    class DigestFrequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        OFF = "off", "Off"

    email = models.EmailField("email address", unique=True)
    digest_frequency = models.CharField(
        max_length=10, choices=DigestFrequency.choices, default=DigestFrequency.DAILY
    )

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Team(models.Model):
    """A named group of users that can own records."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SpaceQuerySet(models.QuerySet):
    def visible_to(self, principal) -> SpaceQuerySet:
        """Spaces a user (or an API token, within its scope) may see."""
        from apps.accounts.access import space_ids_visible_to

        ids = space_ids_visible_to(principal)
        return self if ids is None else self.filter(id__in=ids)


class Space(models.Model):
    """A namespace for records (a team or product area) with its own members and policy."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    # Overrides of the default review intervals in days, e.g. {"constraint": 60}; see
    # apps.records.policy for the keys.
    review_policy = models.JSONField(default=dict, blank=True)
    due_window_days = models.PositiveIntegerField(default=14)
    escalation_days = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(default=timezone.now)

    # Not columns: the signed-in user's access, set per request by apps.web.views.common.
    role: str | None
    can_edit: bool
    can_admin: bool

    objects = SpaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a space."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        EDITOR = "editor", "Editor"
        ADMIN = "admin", "Admin"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "space"], name="membership_unique_user_space")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.space} ({self.role})"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token for tools: hashed, scoped to spaces, read or read-write, revocable."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        READ_WRITE = "read_write", "Read and write"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # SHA-256 of the whole token. The plain token is shown once and never stored.
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    prefix = models.CharField(max_length=16)
    scope = models.CharField(max_length=12, choices=Scope.choices, default=Scope.READ)
    # Empty means every space the user can see.
    spaces = models.ManyToManyField(Space, related_name="api_tokens", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A registered agent's token acts for the agent (apps.agents): within its declared spaces,
    # paths, tools and scopes, and read-only (its writes are proposals).
    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(plain: str) -> str:
        return hashlib.sha256(plain.encode("utf-8")).hexdigest()

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.READ_WRITE

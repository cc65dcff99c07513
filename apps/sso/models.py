"""Single sign-on: which identity-provider groups grant which space roles, and which roles SSO
granted (so that leaving a group takes away only what the group gave)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Membership


class GroupRoleMapping(models.Model):
    """Members of an identity-provider group get a role in a space at each SSO sign-in."""

    group = models.CharField(
        max_length=255,
        help_text="The group exactly as the provider sends it in the groups claim "
        "(a name, or an object ID for Entra ID).",
    )
    space = models.ForeignKey(
        "accounts.Space", on_delete=models.CASCADE, related_name="sso_group_mappings"
    )
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group", "space__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "space"], name="sso_mapping_unique_group_space"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} → {self.space} ({self.role})"


class RoleGrant(models.Model):
    """A membership role that an SSO sign-in set; taken back when the user leaves the group."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_role_grants"
    )
    space = models.ForeignKey("accounts.Space", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    # The role the user held before SSO raised it (restored on removal); empty: SSO added them.
    previous_role = models.CharField(
        max_length=10, choices=Membership.Role.choices, blank=True, default=""
    )
    groups = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "space"], name="sso_grant_unique_user_space")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.space} ({self.role}, from SSO)"

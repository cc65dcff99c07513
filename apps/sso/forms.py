"""Local password sign-in under single sign-on: everyone, administrators only (break-glass), or
nobody (SSO_LOCAL_LOGIN = all | admins | off)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from apps.audit.forms import LockoutAwareAdminAuthenticationForm, LockoutAwareAuthenticationForm


def local_login_policy() -> str:
    return settings.SSO_LOCAL_LOGIN


class _LocalPolicyMixin:
    def clean(self):
        policy = local_login_policy()
        if policy == "off":
            # Refused before any password is checked: nothing to guess, nothing counted.
            raise forms.ValidationError(
                "Password sign-in is turned off here. Use the single sign-on button.",
                code="local_login_off",
            )
        cleaned = super().clean()
        user = self.get_user()
        if policy == "admins" and user is not None and not (user.is_staff or user.is_superuser):
            # Only after the right password, so the message never tells who is an admin.
            self.user_cache = None
            raise forms.ValidationError(
                "Password sign-in is kept for administrators (break-glass). "
                "Use the single sign-on button.",
                code="local_login_admins_only",
            )
        return cleaned


class LocalLoginForm(_LocalPolicyMixin, LockoutAwareAuthenticationForm):
    """The site's sign-in form: lockout-aware, and subject to SSO_LOCAL_LOGIN."""


class LocalAdminLoginForm(_LocalPolicyMixin, LockoutAwareAdminAuthenticationForm):
    """The admin's sign-in form, with the same rules."""

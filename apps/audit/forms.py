"""The sign-in form that tells a locked-out person why and for how long."""

from __future__ import annotations

import contextlib

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from apps.audit.lockout import lock_for
from apps.core.request_context import client_ip


class LockoutAwareAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        ip = client_ip(self.request) if self.request is not None else None
        lock = lock_for(username=username, ip=ip)
        if lock is not None:
            # Still go through authenticate() so the refused attempt is audited.
            with contextlib.suppress(forms.ValidationError):
                super().clean()
            raise forms.ValidationError(lock.message, code="locked_out")
        return super().clean()


class LockoutAwareAdminAuthenticationForm(LockoutAwareAuthenticationForm, AdminAuthenticationForm):
    """The admin's sign-in (staff only) with the same lockout message."""

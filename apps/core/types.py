"""Types for the type checker only (see docs/architecture.md, "Type checking")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from apps.accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a `@login_required` view: its user is signed in (django-stubs' pattern)."""

    user: User  # narrows HttpRequest's `User | AnonymousUser`

"""Coarse API permissions. Per-space decisions are made by apps.accounts.access via the services."""

from rest_framework import exceptions, permissions

from apps.accounts.models import ApiToken


class IsAuthenticatedWithScope(permissions.BasePermission):
    """Signed in (session or token); read-only tokens may only use safe methods."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        token = request.auth
        if (
            request.method not in permissions.SAFE_METHODS
            and isinstance(token, ApiToken)
            and not token.can_write
            # A registered agent's writes are proposals, not record edits (apps.agents).
            and not (token.agent_id and getattr(view, "agent_write", False))
        ):
            raise exceptions.PermissionDenied("This token is read-only (scope `read`).")
        return True


class IsStaffForCreate(permissions.BasePermission):
    """Creating spaces is for site admins (staff); other changes are checked by the service."""

    def has_permission(self, request, view) -> bool:
        if getattr(view, "action", None) == "create":
            return bool(request.user.is_staff or request.user.is_superuser)
        return True

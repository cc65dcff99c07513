"""/api/v1/me/: who the caller is, how they signed in, and their role in each space."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.models import ApiToken, Space
from apps.api import serializers as s
from apps.api.base import ApiView


class MeView(ApiView, APIView):
    @extend_schema(
        summary="Who you are, how you signed in, and your spaces", responses=s.MeSerializer
    )
    def get(self, request):
        principal = self.principal
        token = principal if isinstance(principal, ApiToken) else None
        # Effective roles as every door decides them (a read-only token is a viewer).
        roles = access.roles_by_space(principal)
        spaces = [
            (space, roles[space.id])
            for space in Space.objects.filter(id__in=roles).order_by("slug")
        ]
        context = {"token": token, "spaces": spaces}
        return Response(s.MeSerializer(request.user, context=context).data)

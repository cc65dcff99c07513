"""Rule files for agents: `GET /api/v1/rules/?spaces=…` (a read: read-only tokens may use it).

Answers the files `contextkb rules` writes (nested AGENTS.md, Copilot `.instructions.md`, Cursor
`.mdc`), rendered by apps.retrieval.rules, the renderer of `/api/v1/context/agents.md` too.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.base import ApiView
from apps.core.errors import InvalidInput
from apps.core.replica import on_replica
from apps.retrieval import rules

MAX_SPACES = 50


class RulesView(ApiView, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "spaces", str, many=True, description="Space slugs (default: all visible)."
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Path-scoped rule files from the owner-verified records and their anchors."""
        spaces: list[str] = []
        for value in request.query_params.getlist("spaces"):
            spaces += [s.strip() for s in value.split(",") if s.strip()]
        if len(spaces) > MAX_SPACES or any("\x00" in s or len(s) > 60 for s in spaces):
            raise InvalidInput(
                f"`spaces` takes at most {MAX_SPACES} slugs.", details={"spaces": ["Invalid."]}
            )
        return Response(on_replica(rules.rule_files, principal=self.principal, spaces=spaces))


urlpatterns = [path("", RulesView.as_view(), name="rules")]

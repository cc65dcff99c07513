"""Change assessment: `POST /api/v1/changes/assess/` (a read: read-only tokens may use it).

Body: `{"paths": [...], "changes": [{"path", "additions", "deletions"}], "title", "description",
"spaces": [...]}`; `paths` or `changes` (or both). The answer names the guardrails,
constraints, decisions and intent governing the change and a review level (apps.records.assess).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.base import ApiView
from apps.api.serializers import StrictCharField
from apps.core.replica import on_replica
from apps.records import assess


class ChangedFile(serializers.Serializer):
    path = StrictCharField(max_length=assess.MAX_PATH_CHARS, trim_whitespace=False)
    additions = serializers.IntegerField(min_value=0, required=False, default=0)
    deletions = serializers.IntegerField(min_value=0, required=False, default=0)


class AssessInput(serializers.Serializer):
    paths = serializers.ListField(
        child=StrictCharField(max_length=assess.MAX_PATH_CHARS, trim_whitespace=False),
        max_length=assess.MAX_PATHS,
        required=False,
        default=list,
    )
    changes = serializers.ListField(
        child=ChangedFile(), max_length=assess.MAX_PATHS, required=False, default=list
    )
    title = StrictCharField(
        max_length=assess.MAX_TEXT_CHARS, required=False, allow_blank=True, default=""
    )
    description = StrictCharField(
        max_length=assess.MAX_TEXT_CHARS, required=False, allow_blank=True, default=""
    )
    spaces = serializers.ListField(
        child=StrictCharField(max_length=60), max_length=50, required=False, default=list
    )

    def validate(self, data):
        given = data["paths"] or data["changes"] or data["title"].strip()
        if not given and not data["description"].strip():
            raise serializers.ValidationError(
                {"paths": ["Give the changed paths (or a title or description)."]}
            )
        return data


class AssessView(ApiView, APIView):
    # Assessing is a read, even as a POST: read-only tokens may use it.
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AssessInput, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        """The records governing a change and how deeply to review it (deep, normal, light)."""
        data = self.validated(AssessInput)
        paths = list(data["paths"]) + [c["path"] for c in data["changes"]]
        lines = (
            sum(c["additions"] + c["deletions"] for c in data["changes"])
            if data["changes"]
            else None
        )
        result = on_replica(
            assess.assess_change,
            principal=self.principal,
            paths=paths,
            spaces=data["spaces"],
            title=data["title"],
            description=data["description"],
            lines_changed=lines,
        )
        return Response(result)


urlpatterns = [path("assess/", AssessView.as_view(), name="changes_assess")]

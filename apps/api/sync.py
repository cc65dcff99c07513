"""Repository sync over the API (docs/interchange.md).

- `GET /api/v1/sync/<space>/` — the link (never its credential), the last sync, its result and
  message, and the files waiting for a person.
- `PUT /api/v1/sync/<space>/` — link the space to a repository folder (space admins).
- `POST /api/v1/sync/<space>/pull/`, `…/push/`, `…/sync/` — run one now; answers with its outcome.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Space
from apps.api.base import ApiView
from apps.core.errors import NotFound
from apps.interchange import sync
from apps.interchange.models import RepoLink


class RepoLinkInput(serializers.Serializer):
    remote_url = serializers.CharField(max_length=500)
    branch = serializers.CharField(max_length=200, default="main")
    folder = serializers.CharField(max_length=300, default="docs/adr", allow_blank=True)
    push_branch = serializers.CharField(max_length=200, default="contextkb/edits")
    username = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    credential = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="An access token; stored encrypted and never returned. Omit to keep the "
        "stored one, send an empty string to remove it.",
    )


class RepoLinkOutput(serializers.ModelSerializer):
    space: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    has_credential = serializers.BooleanField()

    class Meta:
        model = RepoLink
        fields = [
            "space",
            "remote_url",
            "branch",
            "folder",
            "push_branch",
            "username",
            "has_credential",
            "last_sync_at",
            "last_direction",
            "last_result",
            "last_message",
            "last_pulled_commit",
            "waiting",
        ]


class SyncOutcomeOutput(serializers.Serializer):
    result = serializers.CharField()
    message = serializers.CharField()
    waiting = serializers.ListField(child=serializers.DictField())


class _SpaceMixin:
    principal: Any  # ApiView's

    def space(self, slug: str) -> Space:
        space = Space.objects.visible_to(self.principal).filter(slug=slug).first()
        if space is None:
            raise NotFound(f"Space {slug!r} not found.")
        return space


class RepoLinkView(_SpaceMixin, ApiView, APIView):
    @extend_schema(summary="A space's repository link and its last sync", responses=RepoLinkOutput)
    def get(self, request, slug):
        link = sync.repo_link_for(space=self.space(slug), actor=self.principal)
        if link is None:
            raise NotFound("This space is not linked to a repository.")
        return Response(RepoLinkOutput(link).data)

    @extend_schema(
        summary="Link a space to a repository folder",
        request=RepoLinkInput,
        responses=RepoLinkOutput,
    )
    def put(self, request, slug):
        data = self.validated(RepoLinkInput)
        link = sync.repo_link_save(space=self.space(slug), actor=self.principal, **data)
        return Response(RepoLinkOutput(link).data)


class SyncRunView(_SpaceMixin, ApiView, APIView):
    @extend_schema(summary="Pull, push or both, now", request=None, responses=SyncOutcomeOutput)
    def post(self, request, slug, direction):
        link = sync.require_sync_rights(space=self.space(slug), actor=self.principal)
        if direction == "pull":
            outcome = sync.repo_pull(link=link)
        elif direction == "push":
            outcome = sync.repo_push(link=link)
        else:
            outcome = sync.combined(sync.repo_sync(link=link))
        return Response(SyncOutcomeOutput(outcome).data)


urlpatterns = [
    path("<slug:slug>/", RepoLinkView.as_view(), name="sync"),
    *(
        path(f"<slug:slug>/{direction}/", SyncRunView.as_view(), {"direction": direction})
        for direction in ("pull", "push", "sync")
    ),
]

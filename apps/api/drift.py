"""Drift: CI (or a push webhook) tells the KB which paths a commit changed; records anchored
there become suspect.

- `POST /api/v1/drift/` — `{repository, commit, changed_paths: [...]}` with a read-write token.
- `POST /api/v1/drift/github/` — a GitHub push webhook, signed with X-Hub-Signature-256.
- `POST /api/v1/drift/gitlab/` — a GitLab push hook, with X-Gitlab-Token.
Both webhooks use the shared secret DRIFT_WEBHOOK_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.base import ApiView
from apps.api.serializers import StrictCharField
from apps.interchange import sync as repo_sync
from apps.reminders import services
from apps.reminders.models import DriftReport

NULL_SHA = "0" * 40


class DriftInput(serializers.Serializer):
    repository = StrictCharField(max_length=300)
    commit = StrictCharField(max_length=64, allow_blank=True, required=False, default="")
    changed_paths = serializers.ListField(
        child=StrictCharField(max_length=services.MAX_PATH_CHARS, trim_whitespace=False),
        max_length=services.MAX_CHANGED_PATHS,
        allow_empty=True,
    )


class DriftOutput(serializers.ModelSerializer):
    created = serializers.BooleanField()

    class Meta:
        model = DriftReport
        fields = [
            "repository",
            "commit",
            "source",
            "suspect_count",
            "unmatched_paths",
            "created_at",
            "created",
        ]


def _answer(report: DriftReport, created: bool) -> Response:
    report.created = created  # type: ignore[attr-defined]  # not a column; DriftOutput reads it
    return Response(
        DriftOutput(report).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


class DriftView(ApiView, APIView):
    @extend_schema(request=DriftInput, responses={201: DriftOutput, 200: DriftOutput})
    def post(self, request):
        """Report the paths a commit changed; answers 200 (not 201) when it was already reported."""
        data = self.validated(DriftInput)
        report, created = services.drift_report(
            repository=data["repository"],
            commit=data["commit"],
            changed_paths=data["changed_paths"],
            source=DriftReport.Source.API,
            actor=self.principal,
        )
        return _answer(report, created)


def _object(value) -> dict:
    """A JSON object from a webhook payload, or {} when the payload has something else there."""
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _changed_paths(commits) -> list[str]:
    paths: list[str] = []
    seen: set[str] = set()
    for commit in commits if isinstance(commits, list) else []:
        if not isinstance(commit, dict):
            continue
        for key in ("added", "modified", "removed"):
            for changed in commit.get(key) or []:
                if isinstance(changed, str) and changed not in seen:
                    seen.add(changed)
                    paths.append(changed)
    return paths


class _WebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def _secret(self) -> bytes:
        secret = settings.DRIFT_WEBHOOK_SECRET
        if not secret:
            raise exceptions.PermissionDenied("The drift webhook is not configured.")
        return secret.encode()

    def _payload(self, body: bytes) -> dict:
        content_type = self.request.META.get("CONTENT_TYPE", "")
        try:
            text = body.decode("utf-8")
            if content_type.startswith("application/x-www-form-urlencoded"):
                text = parse_qs(text).get("payload", [""])[0]
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise exceptions.ParseError("The webhook body is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise exceptions.ParseError("The webhook body must be a JSON object.")
        return payload

    def _report(self, *, repository, commit, paths, source, compare_url, ref="") -> Response:
        if not isinstance(repository, str) or not repository.strip():
            raise exceptions.ValidationError({"repository": ["Missing repository name."]})
        if not isinstance(commit, str):
            raise exceptions.ValidationError({"commit": ["Missing commit id."]})
        # Spaces synced with this repository's branch pull it (apps.interchange.sync).
        repo_sync.pull_after_push(repository=repository, ref=_text(ref))
        report, created = services.drift_report(
            repository=repository,
            commit=commit,
            changed_paths=paths,
            source=source,
            compare_url=compare_url
            if isinstance(compare_url, str) and compare_url.startswith(("https://", "http://"))
            else "",
        )
        return _answer(report, created)


class GitHubPushView(_WebhookView):
    @extend_schema(request=None, responses={201: DriftOutput, 200: DriftOutput})
    def post(self, request):
        """A GitHub `push` webhook (JSON or form content type), verified by X-Hub-Signature-256."""
        body = request.body
        expected = "sha256=" + hmac.new(self._secret(), body, hashlib.sha256).hexdigest()
        given = request.META.get("HTTP_X_HUB_SIGNATURE_256", "")
        if not hmac.compare_digest(expected, given):
            raise exceptions.PermissionDenied("The webhook signature does not match.")
        event = request.META.get("HTTP_X_GITHUB_EVENT", "")
        if event == "ping":
            return Response({"ok": True})
        if event != "push":
            return Response({"ignored": f"event {event!r}"}, status=status.HTTP_202_ACCEPTED)
        payload = self._payload(body)
        if payload.get("deleted") or payload.get("after") == NULL_SHA:
            return Response({"ignored": "branch deleted"}, status=status.HTTP_202_ACCEPTED)
        repository = _object(payload.get("repository")).get("full_name")
        return self._report(
            repository=repository,
            commit=payload.get("after"),
            paths=_changed_paths(payload.get("commits")),
            source=DriftReport.Source.GITHUB,
            compare_url=payload.get("compare", ""),
            ref=payload.get("ref"),
        )


class GitLabPushView(_WebhookView):
    @extend_schema(request=None, responses={201: DriftOutput, 200: DriftOutput})
    def post(self, request):
        """A GitLab `Push Hook`, verified by X-Gitlab-Token."""
        given = request.META.get("HTTP_X_GITLAB_TOKEN", "").encode()
        if not hmac.compare_digest(self._secret(), given):
            raise exceptions.PermissionDenied("The webhook token does not match.")
        event = request.META.get("HTTP_X_GITLAB_EVENT", "")
        if event != "Push Hook":
            return Response({"ignored": f"event {event!r}"}, status=status.HTTP_202_ACCEPTED)
        payload = self._payload(request.body)
        commit = payload.get("checkout_sha") or payload.get("after")
        if not commit or commit == NULL_SHA:
            return Response({"ignored": "branch deleted"}, status=status.HTTP_202_ACCEPTED)
        project = _object(payload.get("project"))
        web_url = _text(project.get("web_url"))
        before = _text(payload.get("before"))
        compare = (
            f"{web_url}/-/compare/{before}...{commit}"
            if web_url.startswith(("https://", "http://")) and before and isinstance(commit, str)
            else ""
        )
        return self._report(
            repository=project.get("path_with_namespace"),
            commit=commit,
            paths=_changed_paths(payload.get("commits")),
            source=DriftReport.Source.GITLAB,
            compare_url=compare,
            ref=payload.get("ref"),
        )


urlpatterns = [
    path("", DriftView.as_view(), name="drift"),
    path("github/", GitHubPushView.as_view(), name="drift_github"),
    path("gitlab/", GitLabPushView.as_view(), name="drift_gitlab"),
]

"""Markdown import over the API.

- `POST /api/v1/import/` — multipart form: `file` (a .zip of an ADR folder), `space` (slug),
  optional `kind`, `owner` (email of a space member), `dry_run`. Answers 202 with the job; the
  import runs as a Celery task.
- `GET /api/v1/import/<id>/` — the job's progress and, when done, its summary.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.models import Space
from apps.api.base import ApiView
from apps.core.errors import InvalidInput, NotFound
from apps.interchange import services
from apps.interchange.models import ImportJob
from apps.records.models import Record


class ImportInput(serializers.Serializer):
    file = serializers.FileField(help_text="A .zip of the folder of markdown decision records.")
    space = serializers.SlugField(help_text="Slug of the space to import into.")
    kind = serializers.ChoiceField(choices=Record.Kind.choices, default=Record.Kind.DECISION)
    owner = serializers.EmailField(
        required=False,
        allow_blank=True,
        help_text="Email of a member of the space: owns the imported records that name no owner.",
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    overwrite_edits = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Let the files win over edits made in contextkb since the last import "
        "(otherwise such files are skipped and listed).",
    )


class ImportJobOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uid")
    space: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    percent = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "space",
            "filename",
            "kind",
            "dry_run",
            "overwrite_edits",
            "state",
            "phase",
            "done",
            "total",
            "percent",
            "summary",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_url(self, job) -> str:
        return reverse("api:import-detail", args=[job.uid], request=self.context.get("request"))


class ImportView(ApiView, APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Import a zip of markdown ADRs into a space (runs in the background)",
        request={"multipart/form-data": ImportInput},
        responses={202: ImportJobOutput},
    )
    def post(self, request):
        data = self.validated(ImportInput)
        space = Space.objects.visible_to(self.principal).filter(slug=data["space"]).first()
        if space is None:
            raise NotFound(f"Space {data['space']!r} not found.")
        upload = data["file"]
        limit = settings.CONTEXTKB_IMPORT_MAX_ZIP_BYTES
        if upload.size > limit:
            # Refused before reading it into memory.
            raise InvalidInput(
                f"The zip is larger than {limit:,} bytes.", details={"file": ["Too large."]}
            )
        job = services.import_job_create(
            space=space,
            actor=self.principal,
            data=upload.read(),
            filename=upload.name or "",
            kind=data["kind"],
            owner_email=data.get("owner", ""),
            dry_run=data["dry_run"],
            overwrite_edits=data["overwrite_edits"],
        )
        body = ImportJobOutput(job, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ImportDetailView(ApiView, APIView):
    @extend_schema(summary="Progress and summary of an import", responses={200: ImportJobOutput})
    def get(self, request, uid):
        job = get_object_or_404(ImportJob.objects.select_related("space"), uid=uid)
        if not access.can_view(self.principal, job.space):
            raise NotFound("No such import.")
        return Response(ImportJobOutput(job, context={"request": request}).data)


urlpatterns = [
    path("", ImportView.as_view(), name="import"),
    path("<uuid:uid>/", ImportDetailView.as_view(), name="import-detail"),
]

"""Records: list, read (also by space and key), create, update under If-Match, archive,
verify, supersede; and per record its links and its revisions (read, diff, restore)."""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.models import Space
from apps.api import serializers as s
from apps.api.base import ApiView
from apps.api.exceptions import PreconditionRequired
from apps.api.filters import RecordFilter
from apps.core.errors import NotFound
from apps.records import fields as record_fields
from apps.records import owners, selectors, services
from apps.records.models import Link, Record, Revision

# One ETag or a comma-separated list; the quotes and the weak W/ prefix are optional.
ETAG_PATTERN = r'^ *(W/)?("[0-9]{1,9}"|[0-9]{1,9}) *(, *(W/)?("[0-9]{1,9}"|[0-9]{1,9}) *)*$'

FIELDS_PARAM = OpenApiParameter(
    "fields",
    OpenApiTypes.STR,
    enum=["full", "brief"],
    description="`brief`: only id, key, space, title, kind, status, owner, freshness and url "
    "(the record's page).",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    pattern=ETAG_PATTERN,
    description='The record\'s ETag (its version, e.g. `"3"`) as last read. Missing: 428; '
    "stale: 412 with the current version.",
)
IF_MATCH_OPTIONAL = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    pattern=ETAG_PATTERN,
    description="Optional: the ETag the change is based on (412 when stale).",
)
ETAG_HEADER = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    response=[200, 201],
    description='The record\'s version, e.g. `"3"`; send it back in If-Match.',
)
LOCATION_HEADER = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    location=OpenApiParameter.HEADER,
    response=[201],
    description="The new record's API URL.",
)


def record_response(description: str = "The record.") -> OpenApiResponse:
    return OpenApiResponse(s.RecordSerializer, description=description)


RECORD_OR_BRIEF = PolymorphicProxySerializer(
    component_name="RecordFullOrBrief",
    serializers=[s.RecordSerializer, s.RecordBriefSerializer],
    resource_type_field_name=None,
    many=True,
)
ONE_RECORD_OR_BRIEF = PolymorphicProxySerializer(
    component_name="RecordFullOrBrief",
    serializers=[s.RecordSerializer, s.RecordBriefSerializer],
    resource_type_field_name=None,
    many=False,
)


def etag(record: Record) -> str:
    return f'"{record.version}"'


def parse_if_match(request, *, required: bool, current: int) -> int | None:
    """The version the client's change is based on, from `If-Match: "3"` (or a list of ETags).

    With a list, the current version is used when it is in the list (the service still compares
    it under a row lock), else the first one, which then fails as stale.
    """
    value = request.headers.get("If-Match")
    if value is None:
        if required:
            raise PreconditionRequired()
        return None
    if value.strip() == "*":
        raise exceptions.ValidationError(
            {"If-Match": ['"*" would overwrite whatever is there; send the ETag you read.']}
        )
    versions = []
    for part in value.split(","):
        tag = part.strip().removeprefix("W/")
        digits = tag[1:-1] if len(tag) > 2 and tag[0] == tag[-1] == '"' else tag
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            raise exceptions.ValidationError(
                {"If-Match": ['Use the ETag from the last read, e.g. "3".']}
            )
        versions.append(int(digits))
    return current if current in versions else versions[0]


# Owner usernames / team slugs into objects (unknown ones are invalid input).
_resolve_owners = owners.from_api


@extend_schema_view(
    list=extend_schema(
        summary="List and filter records",
        parameters=[FIELDS_PARAM],
        responses=RECORD_OR_BRIEF,
    ),
    retrieve=extend_schema(
        summary="Read a record (ETag: its version)",
        parameters=[FIELDS_PARAM, ETAG_HEADER],
        responses={200: ONE_RECORD_OR_BRIEF},
    ),
    create=extend_schema(
        summary="Create a record",
        request=s.RecordCreateInput,
        parameters=[ETAG_HEADER, LOCATION_HEADER],
        responses={201: record_response("The new record (Location: its API URL).")},
    ),
    update=extend_schema(
        summary="Replace a record's editable fields (left out: empty; status: kept)",
        request=s.RecordWriteInput,
        parameters=[IF_MATCH, ETAG_HEADER],
        responses={200: record_response()},
    ),
    partial_update=extend_schema(
        summary="Change some of a record's fields",
        request=s.RecordPatchInput,
        parameters=[IF_MATCH, ETAG_HEADER],
        responses={200: record_response()},
    ),
)
class RecordViewSet(
    ApiView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.RecordSerializer
    lookup_value_regex = r"[0-9]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = RecordFilter
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.record_list_visible(
            principal=self.principal, include_archived=True
        ).order_by("space_id", "kind", "number")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_serializer_class(self):
        if self.action in ("list", "retrieve", "by_key") and self.fields_form() == "brief":
            return s.RecordBriefSerializer
        return s.RecordSerializer

    def _record_response(self, record: Record, *, code: int = status.HTTP_200_OK) -> Response:
        record = self.get_queryset().get(pk=record.pk)
        response = Response(self.get_serializer(record).data, status=code)
        response["ETag"] = etag(record)
        return response

    def retrieve(self, request, pk=None):
        return self._record_response(self.get_object())

    @extend_schema(
        summary="Read a record by space and key",
        parameters=[
            OpenApiParameter("space_slug", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH),
            FIELDS_PARAM,
            ETAG_HEADER,
        ],
        responses={200: ONE_RECORD_OR_BRIEF},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"by-key/(?P<space_slug>[-a-zA-Z0-9_]+)/(?P<key>[A-Za-z]{1,5}-[0-9]{1,9})",
        filter_backends=[],
        pagination_class=None,
    )
    def by_key(self, request, space_slug=None, key=None):
        record = selectors.record_get_by_key(
            principal=self.principal, space_slug=space_slug, key=key
        )
        if record is None:
            raise NotFound(f"No record {key} in space {space_slug!r}.")
        return self._record_response(record)

    def create(self, request):
        data = _resolve_owners(self.validated(s.RecordCreateInput))
        slug = data.pop("space")
        space = Space.objects.visible_to(self.principal).filter(slug=slug).first()
        if space is None:
            raise NotFound(f"Space {slug!r} not found.")
        record = services.record_create(space=space, actor=self.principal, **data)
        response = self._record_response(record, code=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"/api/v1/records/{record.pk}/")
        return response

    def _update(self, request, *, partial: bool) -> Response:
        record = self.get_object()
        expected = parse_if_match(request, required=True, current=record.version)
        data = self.validated(s.RecordPatchInput if partial else s.RecordWriteInput)
        message = data.pop("message", "")
        allow_secrets = data.pop("allow_secrets", False)
        if not partial:
            # PUT replaces every editable field; what is left out goes back to its default.
            defaults = record_fields.put_defaults()
            data = {**defaults, **data}
        changes = _resolve_owners(data)
        record = services.record_update(
            record=record,
            actor=self.principal,
            expected_version=expected,
            changes=changes,
            message=message,
            allow_secrets=allow_secrets,
        )
        return self._record_response(record)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    @extend_schema(
        summary="Archive a record (nothing is deleted)",
        request=None,
        responses={200: s.RecordSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def archive(self, request, pk=None):
        record = services.record_archive(record=self.get_object(), actor=self.principal)
        return self._record_response(record)

    @extend_schema(
        summary="Bring an archived record back", request=None, responses={200: s.RecordSerializer}
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def unarchive(self, request, pk=None):
        record = services.record_unarchive(record=self.get_object(), actor=self.principal)
        return self._record_response(record)

    @extend_schema(
        summary="Confirm the record still holds (or that it needs an update)",
        request=s.VerifyInput,
        responses={201: s.VerificationSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def verify(self, request, pk=None):
        record = self.get_object()
        data = self.validated(s.VerifyInput)
        verification = services.record_verify(record=record, actor=self.principal, **data)
        verification = selectors.present_verification(self.principal, verification)
        return Response(s.VerificationSerializer(verification).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Mark this record superseded by another (its successor), or by a new one",
        request=s.SupersedeInput,
        responses={201: s.LinkSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def supersede(self, request, pk=None):
        record = self.get_object()
        data = self.validated(s.SupersedeInput)
        if "new" in data:
            fields = _resolve_owners(dict(data["new"]))
            message = fields.pop("message", "")
            allow_secrets = fields.pop("allow_secrets", False)
            _, link = services.record_supersede_with_new(
                old=record,
                actor=self.principal,
                fields=fields,
                copy_links=data.get("copy_links", []),
                note=data.get("note", ""),
                message=message,
                allow_secrets=allow_secrets,
            )
            return Response(link_data(link, request), status=status.HTTP_201_CREATED)
        successor = visible_record(self.principal, data["successor"], field="successor")
        link = services.record_supersede(
            old=record, new=successor, actor=self.principal, note=data.get("note", "")
        )
        return Response(link_data(link, request), status=status.HTTP_201_CREATED)

    # --- links of one record ---

    @extend_schema(
        methods=["GET"],
        summary="Links of a record, both directions",
        responses=s.RecordLinkSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Link this record to another",
        request=s.LinkInput,
        responses={201: s.LinkSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def links(self, request, pk=None):
        record = self.get_object()
        if request.method == "POST":
            data = self.validated(s.LinkInput)
            target = visible_record(self.principal, data["target"], field="target")
            link = services.record_link(
                source=record,
                target=target,
                type=data["type"],
                note=data.get("note", ""),
                actor=self.principal,
            )
            return Response(link_data(link, request), status=status.HTTP_201_CREATED)
        links = (
            Link.objects.filter(Q(source=record) | Q(target=record))
            .filter(
                source__in=Record.objects.visible_to(self.principal),
                target__in=Record.objects.visible_to(self.principal),
            )
            .select_related("source__space", "target__space")
            .order_by("id")
        )
        page = self.paginate_queryset(links)
        data = s.RecordLinkSerializer(page, many=True, context={"record": record}).data
        return self.get_paginated_response(data)

    # --- revisions ---

    def _revision(self, record: Record, number) -> Revision:
        return get_object_or_404(
            Revision.objects.select_related("author"), record=record, number=number
        )

    @extend_schema(
        summary="History of a record, newest first", responses=s.RevisionSerializer(many=True)
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def revisions(self, request, pk=None):
        record = self.get_object()
        revisions = (
            Revision.objects.filter(record=record).select_related("author").order_by("-number")
        )
        page = selectors.present_revisions(self.principal, self.paginate_queryset(revisions))
        return self.get_paginated_response(s.RevisionSerializer(page, many=True).data)

    @extend_schema(
        summary="One revision with its full content",
        parameters=[OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: s.RevisionDetailSerializer},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"revisions/(?P<number>[0-9]{1,9})",
        filter_backends=[],
        pagination_class=None,
    )
    def revision(self, request, pk=None, number=None):
        revision = self._revision(self.get_object(), number)
        [revision] = selectors.present_revisions(self.principal, [revision])
        return Response(s.RevisionDetailSerializer(revision).data)

    @extend_schema(
        summary="What changed between two revisions",
        parameters=[
            OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter(
                "against",
                {"type": "integer", "minimum": 1, "maximum": 999_999_999},
                description="The revision to compare with (default: the one before).",
            ),
        ],
        responses={200: s.RevisionDiffSerializer},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"revisions/(?P<number>[0-9]{1,9})/diff",
        filter_backends=[],
        pagination_class=None,
    )
    def revision_diff(self, request, pk=None, number=None):
        record = self.get_object()
        new = self._revision(record, number)
        against = request.query_params.get("against")
        if against is None:
            old = Revision.objects.filter(record=record, number=new.number - 1).first()
            old = old or Revision(record=record, number=0, version=0, snapshot={})
        else:
            if not against.isascii() or not against.isdigit() or len(against) > 9:
                raise exceptions.ValidationError({"against": ["A revision number."]})
            old = self._revision(record, int(against))
        if old.number > new.number:
            old, new = new, old
        old, new = selectors.present_revisions(self.principal, [old, new])
        changes = selectors.revision_diff(old, new)
        return Response({"old": old.number, "new": new.number, "changes": changes})

    @extend_schema(
        summary="Restore the content of an old revision (as a new revision)",
        parameters=[
            OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH),
            IF_MATCH_OPTIONAL,
        ],
        request=None,
        responses={200: s.RecordSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"revisions/(?P<number>[0-9]{1,9})/restore",
        filter_backends=[],
        pagination_class=None,
    )
    def revision_restore(self, request, pk=None, number=None):
        record = self.get_object()
        revision = self._revision(record, number)
        record = services.record_restore_revision(
            record=record,
            revision=revision,
            actor=self.principal,
            expected_version=parse_if_match(request, required=False, current=record.version),
        )
        return self._record_response(record)


def visible_record(principal, pk: int, *, field: str) -> Record:
    """The record `pk` if the principal may see it; else 404 naming the input `field`."""
    record = Record.objects.visible_to(principal).select_related("space").filter(pk=pk).first()
    if record is None:
        raise NotFound(f"Record {pk} not found.", details={field: ["No such record."]})
    return record


def link_data(link: Link, request) -> dict:
    """A link as the API shows it, read again with both ends' spaces."""
    link = Link.objects.select_related("source__space", "target__space").get(pk=link.pk)
    return s.LinkSerializer(link, context={"request": request}).data

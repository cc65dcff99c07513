"""Links between records: list, read, create and remove (links of one record are under
/records/<id>/links/, apps.api.records)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.base import ApiView
from apps.api.records import link_data, visible_record
from apps.records import services
from apps.records.models import Link, Record


@extend_schema_view(
    list=extend_schema(summary="Links between records you can see"),
    retrieve=extend_schema(summary="Read a link"),
    create=extend_schema(
        summary="Link two records", request=s.LinkCreateInput, responses={201: s.LinkSerializer}
    ),
    destroy=extend_schema(summary="Remove a link", responses={204: None}),
)
class LinkViewSet(
    ApiView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.LinkSerializer
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        visible = Record.objects.visible_to(self.principal)
        return (
            Link.objects.filter(source__in=visible, target__in=visible)
            .select_related("source__space", "target__space")
            .order_by("id")
        )

    def create(self, request):
        data = self.validated(s.LinkCreateInput)
        source = visible_record(self.principal, data["source"], field="source")
        target = visible_record(self.principal, data["target"], field="target")
        link = services.record_link(
            source=source,
            target=target,
            type=data["type"],
            note=data.get("note", ""),
            actor=self.principal,
        )
        return Response(link_data(link, request), status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.record_unlink(link=instance, actor=self.principal)

"""Spaces: list and read the ones you can see; site admins create, space admins rename."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts import services as account_services
from apps.accounts.models import Space
from apps.api import serializers as s
from apps.api.base import ApiView
from apps.api.permissions import IsAuthenticatedWithScope, IsStaffForCreate


@extend_schema_view(
    list=extend_schema(summary="List the spaces you can see"),
    retrieve=extend_schema(summary="Read a space"),
    create=extend_schema(
        summary="Create a space (site admins); you become its admin",
        request=s.SpaceCreateInput,
        responses={201: s.SpaceSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a space's name or description (space admins)",
        request=s.SpaceUpdateInput,
        responses={200: s.SpaceSerializer},
    ),
)
class SpaceViewSet(
    ApiView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.SpaceSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    permission_classes = [IsAuthenticatedWithScope, IsStaffForCreate]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return Space.objects.visible_to(self.principal).order_by("slug", "id")

    def create(self, request):
        data = self.validated(s.SpaceCreateInput)
        space = account_services.space_create(actor=request.user, **data)
        return Response(s.SpaceSerializer(space).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, slug=None):
        space = self.get_object()
        data = self.validated(s.SpaceUpdateInput)
        space = account_services.space_update(space=space, actor=self.principal, **data)
        return Response(s.SpaceSerializer(space).data)

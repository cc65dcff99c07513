"""What every API view shares: permissions, both rate limits, the principal and input
validation (ApiView), and the JSON 404 for unknown URLs under /api/."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.api.authentication import principal_of
from apps.api.permissions import IsAuthenticatedWithScope
from apps.core.errors import error_body
from apps.core.throttling import IPRateThrottle, TokenRateThrottle

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass


class ApiView(APIView):
    """Settings every API view shares."""

    permission_classes: Sequence[_PermissionClass] = [IsAuthenticatedWithScope]
    # The per-address limit is checked first (in initial), so guessing tokens is limited too.
    throttle_classes: Sequence[type[BaseThrottle]] = [TokenRateThrottle]

    def initial(self, request, *args, **kwargs):
        by_address = IPRateThrottle()
        if not by_address.allow_request(request, self):
            self.throttled(request, by_address.wait())
        super().initial(request, *args, **kwargs)

    @property
    def principal(self):
        return principal_of(self.request)

    def fields_form(self) -> str:
        value = self.request.query_params.get("fields", "full")
        if value not in ("full", "brief"):
            raise exceptions.ValidationError({"fields": ["Use `full` or `brief`."]})
        return value

    def validated(self, serializer_class, **kwargs) -> dict:
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)

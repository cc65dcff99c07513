"""Page-number pagination with strict parameters: garbage is a 400, not a silent default."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

# Larger numbers mean "past the end" (pages) or "as many as allowed" (page sizes).
CAP = 10**15


def _positive_int(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()) or not digits.lstrip("0"):
        raise exceptions.ValidationError({name: ["A whole number, 1 or more."]})
    digits = digits.lstrip("0")
    return CAP if len(digits) > 15 else int(digits)


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (M above 200 is served as 200); every list has a stable order.

    A page past the last one is `404`; a page or page size that is not a whole number of at
    least 1 is `400`.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        return _positive_int(request, self.page_query_param) or 1

    def get_page_size(self, request):
        size = _positive_int(request, self.page_size_query_param)
        if size is None:
            return self.page_size
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "description": "Page number, from 1. A page past the last one is 404.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Results per page (default {self.page_size}; more than "
                f"{self.max_page_size} are served as {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]

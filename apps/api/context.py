"""The AI tool's main call: GET|POST /api/v1/context/ and GET /api/v1/context/agents.md."""

from __future__ import annotations

import time

from django.http import HttpResponse
from django.urls import path, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Space
from apps.api.authentication import BearerTokenAuthentication, principal_of
from apps.api.exceptions import api_exception_handler
from apps.core.errors import InvalidInput, NotFound
from apps.core.replica import on_replica
from apps.retrieval import services as retrieval_services
from apps.retrieval import usage
from apps.retrieval.agents_md import agents_md
from apps.retrieval.bundle import (
    FORMATS,
    bundle_fetch,
    context_bundle,
    json_body,
    parse_params,
)

CONTEXT_PARAMETERS = [
    OpenApiParameter("q", str, description="Task text: what the tool is about to do."),
    OpenApiParameter(
        "paths",
        str,
        many=True,
        description="File paths being worked on (repeat or comma-separate).",
    ),
    OpenApiParameter("spaces", str, many=True, description="Space slugs (default: all visible)."),
    OpenApiParameter(
        "kinds", str, many=True, description="decision, constraint, intent, guardrail."
    ),
    OpenApiParameter("max_tokens", int, description="Token budget (default 4000)."),
    OpenApiParameter("format", str, enum=["json", "markdown"]),
    OpenApiParameter(
        "include_stale", bool, description="Include stale/suspect records (labelled)."
    ),
    OpenApiParameter(
        "as_of",
        str,
        description="Answer from the records as they read then: an ISO 8601 date (its end, "
        "UTC) or date and time, not in the future.",
    ),
]

# Sent with every bundle, so a markdown reader can cite it too.
BUNDLE_HEADER = "X-Context-Bundle"
MARKDOWN = "text/markdown; charset=utf-8"


class _Base(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    # Fetching context is a read, even as a POST: read-only tokens may use it.
    permission_classes = [permissions.IsAuthenticated]

    def get_exception_handler(self):
        return api_exception_handler

    def perform_content_negotiation(self, request, force=False):
        # `format` is our own parameter (json|markdown), not DRF's renderer override.
        return super().perform_content_negotiation(request, force=True)


class ContextView(_Base):
    """Ranked, current, cited records for a task and/or file paths, packed into a token budget."""

    @extend_schema(parameters=CONTEXT_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return self._answer(request, request.query_params)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise InvalidInput(
                'Send a JSON object, e.g. {"q": "…", "paths": ["…"]}.',
                details={"body": ["Not a JSON object."]},
            )
        return self._answer(request, request.data)

    def _answer(self, request, data):
        started = time.perf_counter()
        principal = principal_of(request)
        params = parse_params(data)
        # Read-only: served by the read replica when one is configured (DATABASE_REPLICA_URL).
        bundle = on_replica(context_bundle, principal=principal, params=params)
        bundle["_served_format"] = params.format
        latency = (time.perf_counter() - started) * 1000
        usage.dispatch(
            usage.build_payload(
                channel="api",
                operation="context",
                principal=principal,
                tool=request.headers.get("User-Agent", ""),
                bundle=bundle,
                latency_ms=latency,
            )
        )
        if params.format == "markdown":
            response = HttpResponse(bundle["markdown"], content_type=MARKDOWN)
        else:
            # Rendered as GET bundles/<id> renders the stored copy (apps.retrieval.bundle).
            response = Response(json_body(bundle))
        response[BUNDLE_HEADER] = bundle["bundle_id"]
        return response


class BundleView(_Base):
    """A bundle served earlier, exactly as it was sent, for citations (kept as long as the usage
    log). Readable by whoever can see every space it drew from; 404 for anyone else."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "markdown"],
                description="Default: the format it was served in.",
            )
        ],
        responses={200: OpenApiTypes.OBJECT, (200, "text/markdown"): OpenApiTypes.STR},
    )
    def get(self, request, bundle_id):
        fmt = request.query_params.get("format") or None
        if fmt is not None and fmt not in FORMATS:
            raise InvalidInput(
                "The bundle request is not valid.", details={"format": ["Use json or markdown."]}
            )
        stored = bundle_fetch(principal=principal_of(request), bundle_id=bundle_id)
        if stored is None:
            raise NotFound("No context bundle with this id is visible to you.")
        if (fmt or stored.served_format) == "markdown":
            response = HttpResponse(stored.markdown, content_type=MARKDOWN)
        else:
            response = HttpResponse(stored.json.encode(), content_type="application/json")
        response[BUNDLE_HEADER] = stored.id
        return response


class AgentsMdView(_Base):
    """An AGENTS.md-style file of a space's active guardrails, constraints and key decisions."""

    @extend_schema(
        parameters=[
            OpenApiParameter("space", str, required=True),
            OpenApiParameter("paths", str, many=True),
        ],
        responses={(200, "text/markdown"): OpenApiTypes.STR},
    )
    def get(self, request):
        started = time.perf_counter()
        principal = principal_of(request)
        paths = []
        for value in request.query_params.getlist("paths"):
            paths += [p.strip() for p in value.split(",") if p.strip()]
        text, records = on_replica(
            agents_md,
            principal=principal,
            space_slug=request.query_params.get("space", ""),
            paths=paths,
        )
        usage.dispatch(
            usage.build_payload(
                channel="api",
                operation="agents_md",
                principal=principal,
                tool=request.headers.get("User-Agent", ""),
                bundle={
                    "paths": paths,
                    "_space_ids": list({r.space_id for r in records}),
                    "items": [{"id": r.pk, "key": r.key, "score": 1.0} for r in records],
                },
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return HttpResponse(text, content_type="text/markdown; charset=utf-8")


class GapReportView(_Base):
    """An AI tool says what it needed to know and did not find: counted as a gap at once."""

    @extend_schema(
        request={
            "application/json": {
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "maxLength": 2000},
                    "note": {"type": "string", "maxLength": 2000},
                    "space": {"type": "string", "description": "Space slug (default: all)."},
                },
            }
        },
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        slug = data.get("space") or None
        space = None
        if slug is not None:
            if not isinstance(slug, str) or "\x00" in slug:
                raise InvalidInput("space must be a slug.", details={"space": ["Not a slug."]})
            space = Space.objects.filter(slug=slug).first()
            if space is None:
                raise NotFound(f"Space {slug!r} not found.")
        gaps = retrieval_services.gap_report(
            principal=principal_of(request),
            query=data.get("query"),
            note=data.get("note") or "",
            space=space,
        )
        return Response(
            {"gaps": [{"space": g.space.slug, "query": g.query, "count": g.count} for g in gaps]},
            status=201,
        )


urlpatterns = [
    path("", ContextView.as_view(), name="context"),
    path("agents.md", AgentsMdView.as_view(), name="context_agents_md"),
    path("gaps/", GapReportView.as_view(), name="context_gap_report"),
    # With or without the trailing slash: ids are cited and typed by hand.
    re_path(r"^bundles/(?P<bundle_id>[^/]+)/?$", BundleView.as_view(), name="context_bundle"),
]

"""/api/v1/proposals/: a registered agent proposes records, changes and "outdated" flags, lists
its own proposals and reads back their status and the reviewer's note (apps.agents)."""

from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents import selectors, services
from apps.agents.models import Proposal
from apps.api.base import ApiView
from apps.api.pagination import Pagination
from apps.core.errors import Forbidden, InvalidInput, NotFound


class ProposalInput(serializers.Serializer):
    """One proposal; which fields apply depends on `kind`."""

    # Plain text, not an enum: the schema's "kind" enum is the record kinds.
    kind = serializers.CharField(help_text="new, update or outdated")
    space = serializers.CharField(max_length=60, required=False, allow_blank=True)
    # kind=new
    record_kind = serializers.CharField(max_length=12, required=False, default="decision")
    title = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    summary = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    anchors = serializers.ListField(child=serializers.CharField(), required=False)
    # kind=update / outdated
    key = serializers.CharField(max_length=40, required=False)
    base_version = serializers.IntegerField(required=False, min_value=1)
    changes = serializers.DictField(required=False)
    # kind=outdated
    evidence = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    evidence_url = serializers.CharField(required=False, allow_blank=True)
    rationale = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    def validate_kind(self, value: str) -> str:
        if value not in Proposal.Kind.values:
            raise serializers.ValidationError("Use new, update or outdated.")
        return value


def proposal_json(proposal: Proposal) -> dict:
    result = None
    accepted = proposal.result_record
    if accepted is not None:
        result = {
            "key": accepted.key,
            "revision": proposal.result_revision,
            "url": accepted.get_absolute_url(),
        }
    return {
        "id": proposal.pk,
        "kind": proposal.kind,
        "status": proposal.status,
        "conflict": proposal.is_conflict,
        "space": proposal.space.slug,
        "record": proposal.record.key if proposal.record is not None else None,
        "base_version": proposal.base_version,
        "fields": proposal.fields,
        "rationale": proposal.rationale,
        "evidence_url": proposal.evidence_url,
        "created_at": proposal.created_at.isoformat(),
        "reviewed_at": proposal.reviewed_at.isoformat() if proposal.reviewed_at else None,
        "reviewer": str(proposal.reviewer) if proposal.reviewer_id else None,
        "review_note": proposal.review_note,
        "edited": proposal.edited,
        "result": result,
        "url": reverse("api:proposal_detail", args=[proposal.pk]),
    }


def _agent_token(request):
    token = request.auth
    if getattr(token, "agent_id", None) is None:
        raise Forbidden(
            "Proposals come from registered agents: use a token issued on the agent's page."
        )
    return token


class ProposalListView(ApiView, APIView):
    # An agent's token is read-only for records; a proposal is not a record write.
    agent_write = True

    @extend_schema(
        summary="Your agent's proposals, newest first",
        operation_id="proposals_list",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        token = _agent_token(request)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.own_proposals(token=token), request, view=self)
        return paginator.get_paginated_response([proposal_json(p) for p in page])

    @extend_schema(
        summary="Propose a new record, a change, or that a record is outdated",
        operation_id="proposals_create",
        request=ProposalInput,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        token = _agent_token(request)
        data = self.validated(ProposalInput)
        kind = data["kind"]
        space = data.get("space") or None
        if kind == Proposal.Kind.NEW:
            proposal = services.proposal_new_record(
                token=token,
                space=space,
                kind=data.get("record_kind") or "decision",
                title=data.get("title", ""),
                summary=data.get("summary", ""),
                body=data.get("body", ""),
                tags=data.get("tags"),
                anchors=data.get("anchors"),
                rationale=data.get("rationale", ""),
            )
        elif kind == Proposal.Kind.UPDATE:
            if not data.get("key"):
                raise InvalidInput("key: the record to change.", details={"key": ["Required."]})
            proposal = services.proposal_update(
                token=token,
                space=space,
                key=data["key"],
                changes=data.get("changes") or {},
                base_version=data.get("base_version"),
                rationale=data.get("rationale", ""),
            )
        else:
            if not data.get("key"):
                raise InvalidInput("key: the outdated record.", details={"key": ["Required."]})
            proposal = services.proposal_flag_outdated(
                token=token,
                space=space,
                key=data["key"],
                evidence=data.get("evidence", ""),
                evidence_url=data.get("evidence_url", ""),
                base_version=data.get("base_version"),
            )
        return Response(proposal_json(proposal), status=201)


class ProposalDetailView(ApiView, APIView):
    @extend_schema(
        summary="One of your agent's proposals: status and reviewer note",
        operation_id="proposals_retrieve",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk: int):
        token = _agent_token(request)
        proposal = selectors.own_proposals(token=token).filter(pk=pk).first()
        if proposal is None:
            raise NotFound(f"Proposal {pk} not found.")
        return Response(proposal_json(proposal))


urlpatterns = [
    path("", ProposalListView.as_view(), name="proposal_list"),
    path("<int:pk>/", ProposalDetailView.as_view(), name="proposal_detail"),
]

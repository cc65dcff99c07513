"""The Agents pages (global and per space, register, edit, tokens) and the proposal review."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import Membership, Space, User
from apps.agents import selectors, services
from apps.agents.forms import AcceptForm, AgentForm, RejectForm, TokenForm
from apps.agents.models import Agent, Proposal
from apps.core.errors import Conflict, InvalidInput
from apps.core.types import AuthenticatedHttpRequest
from apps.web.views.common import service_errors, space_or_404


def _admin_spaces(user: User) -> QuerySet[Space]:
    if user.is_superuser:
        return Space.objects.order_by("name")
    return Space.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.ADMIN
    ).order_by("name")


def _people(spaces: QuerySet[Space]) -> QuerySet[User]:
    return (
        User.objects.filter(is_active=True, memberships__space__in=spaces)
        .distinct()
        .order_by("username")
    )


@login_required
def agent_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every agent in the spaces the user can see (all of them for site admins)."""
    rows = selectors.list_rows(selectors.agents_visible(user=request.user))
    return render(
        request,
        "agents/agent_list.html",
        {"rows": rows, "space": None, "can_register": _admin_spaces(request.user).exists()},
    )


@login_required
def space_agents(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    space = space_or_404(request, slug)
    rows = selectors.list_rows(selectors.agents_visible(user=request.user, space=space))
    return render(
        request,
        "agents/agent_list.html",
        {"rows": rows, "space": space, "can_register": space.can_admin},
    )


def _form_errors(form: forms.Form, exc: InvalidInput) -> None:
    for name, problems in (exc.details or {}).items():
        for problem in problems if isinstance(problems, list) else [problems]:
            form.add_error(name if name in form.fields else None, str(problem))
    if not exc.details:
        form.add_error(None, exc.message)


@login_required
@service_errors
@require_http_methods(["GET", "POST"])
def agent_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    spaces = _admin_spaces(request.user)
    if not spaces.exists():
        raise PermissionDenied("Only space admins can register agents.")
    initial: dict[str, Any] = {"accountable": request.user}
    chosen = spaces.filter(slug=request.GET.get("space", "")).first()
    if chosen is not None:
        initial["spaces"] = [chosen]
    form = AgentForm(request.POST or None, spaces=spaces, people=_people(spaces), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            agent = services.agent_create(actor=request.user, **form.cleaned_for_service())
        except InvalidInput as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{agent.name} is registered. Issue it a token below.")
            return redirect("agents:detail", agent.slug)
    return render(request, "agents/agent_form.html", {"form": form, "agent": None})


def _agent_or_404(request: AuthenticatedHttpRequest, slug: str) -> Agent:
    agent = selectors.agent_for_page(user=request.user, slug=slug)
    if agent is None:
        raise Http404("No such agent.")
    agent.can_manage = selectors.can_manage(request.user, agent)  # type: ignore[attr-defined]  # for the template and the views below
    return agent


@login_required
@service_errors
@require_http_methods(["GET", "POST"])
def agent_edit(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    agent = _agent_or_404(request, slug)
    if not agent.can_manage:  # type: ignore[attr-defined]  # set by _agent_or_404
        raise PermissionDenied("Only admins of the agent's spaces can change it.")
    spaces = _admin_spaces(request.user)
    initial = {
        "name": agent.name,
        "purpose": agent.purpose,
        "accountable": agent.accountable,
        "spaces": list(agent.spaces.all()),
        "path_globs": "\n".join(agent.path_globs),
        "allowed_tools": agent.allowed_tools,
        "allowed_scopes": agent.allowed_scopes,
        "escalation_user": agent.escalation_user,
        "escalation_team": agent.escalation_team,
        "rate_limit": agent.rate_limit,
    }
    form = AgentForm(request.POST or None, spaces=spaces, people=_people(spaces), initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_for_service()
        try:
            services.agent_update(agent=agent, actor=request.user, **data)
        except InvalidInput as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{agent.name} is updated; its tokens follow at once.")
            return redirect("agents:detail", agent.slug)
    return render(request, "agents/agent_form.html", {"form": form, "agent": agent})


def _detail(
    request: AuthenticatedHttpRequest,
    agent: Agent,
    *,
    token_form: TokenForm | None = None,
    new_token: str | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "agent": agent,
        "spaces": list(agent.spaces.all()),
        "governing": selectors.governing_records(agent, user=request.user),
        "activity": selectors.activity(agent),
        "tokens": (
            list(agent.tokens.order_by("-created_at"))
            if agent.can_manage  # type: ignore[attr-defined]  # set by _agent_or_404
            else []
        ),
        "token_form": token_form or TokenForm(),
        "new_token": new_token,
    }
    return render(request, "agents/agent_detail.html", context, status=status)


NEW_TOKEN_KEY = "agents_new_token"  # noqa: S105 - a session key, not a secret


@login_required
def agent_detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    agent = _agent_or_404(request, slug)
    # Shown once: issued by the POST before this redirect, kept in the session only until now.
    new_token = request.session.pop(NEW_TOKEN_KEY, None)
    can_manage = agent.can_manage  # type: ignore[attr-defined]  # set by _agent_or_404
    return _detail(request, agent, new_token=new_token if can_manage else None)


@login_required
@service_errors
@require_POST
def token_create(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    agent = _agent_or_404(request, slug)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _detail(request, agent, token_form=form, status=400)
    try:
        _, plain = services.agent_token_create(
            agent=agent,
            actor=request.user,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
    except InvalidInput as exc:
        _form_errors(form, exc)
        return _detail(request, agent, token_form=form, status=400)
    request.session[NEW_TOKEN_KEY] = plain
    return redirect("agents:detail", agent.slug)


@login_required
@service_errors
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, slug: str, token_id: int) -> HttpResponse:
    agent = _agent_or_404(request, slug)
    token = agent.tokens.filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    services.agent_token_revoke(agent=agent, token=token, actor=request.user)
    messages.success(request, f"Token {token.prefix}… is revoked.")
    return redirect("agents:detail", agent.slug)


@login_required
@service_errors
@require_POST
def agent_disable(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    agent = _agent_or_404(request, slug)
    disabled = request.POST.get("disabled") == "1"
    services.agent_set_disabled(agent=agent, actor=request.user, disabled=disabled)
    messages.success(request, f"{agent.name} is {'disabled' if disabled else 'enabled'}.")
    return redirect("agents:detail", agent.slug)


# --- proposal review ------------------------------------------------------------------------------


@login_required
def proposal_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    proposals = selectors.proposals_to_review(user=request.user)
    return render(request, "agents/proposal_queue.html", {"proposals": proposals})


def _prefill(proposal: Proposal) -> dict:
    """The edit form starts from what accepting as proposed would save."""
    record = proposal.record
    if record is None:  # a new record
        base = proposal.fields
    else:
        base = {"title": record.title, "summary": record.summary, "body": record.body}
        if proposal.kind == Proposal.Kind.UPDATE:
            base = {**base, **proposal.fields}
    return {name: base.get(name, "") for name in ("title", "summary", "body")}


def _reject(request: AuthenticatedHttpRequest, proposal: Proposal, form: RejectForm) -> bool:
    """Reject from the review page; False leaves the form with its errors."""
    if not form.is_valid():
        return False
    try:
        services.proposal_reject(
            proposal=proposal, actor=request.user, note=form.cleaned_data["note"]
        )
    except InvalidInput as exc:
        _form_errors(form, exc)
        return False
    messages.success(request, "Rejected; the agent can read your note back.")
    return True


def _accept(
    request: AuthenticatedHttpRequest, proposal: Proposal, form: AcceptForm, prefill: dict
) -> bool:
    """Accept from the review page, with the fields the reviewer changed from the prefill as
    edits; False leaves the form with its errors."""
    if not form.is_valid():
        return False
    data = form.cleaned_data
    edits = {
        name: data[name]
        for name in ("title", "summary", "body")
        if (data[name] or "").replace("\r\n", "\n") != (prefill.get(name) or "")
    }
    seen = data.get("seen_version")
    if proposal.is_conflict and not request.POST.get("acknowledge_conflict"):
        form.add_error(
            None,
            "The record changed since the agent read it. Compare the proposal with "
            "the current text, then tick the box to accept it on top of the "
            "current version.",
        )
        return False
    try:
        done = services.proposal_accept(
            proposal=proposal,
            actor=request.user,
            edits={k: v.replace("\r\n", "\n") for k, v in edits.items()},
            seen_version=seen if proposal.is_conflict else None,
            note=data.get("note") or "",
        )
    except InvalidInput as exc:
        _form_errors(form, exc)
        return False
    except Conflict as exc:
        form.add_error(None, exc.message)
        return False
    assert done.result_record is not None  # accepting always sets it
    messages.success(
        request,
        f"Accepted: {done.result_record.key} revision "
        f"{done.result_revision} credits {proposal.agent.name} and you.",
    )
    return True


@login_required
@service_errors
@require_http_methods(["GET", "POST"])
def proposal_review(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    proposal = selectors.proposal_for_review(user=request.user, pk=pk)
    if proposal is None:
        raise Http404("No such proposal.")
    prefill = _prefill(proposal) if proposal.status == Proposal.Status.PENDING else {}
    current_version = proposal.record.version if proposal.record is not None else None
    accept_form = AcceptForm(initial={**prefill, "seen_version": current_version})
    reject_form = RejectForm()
    status = 200
    action = request.POST.get("action") if request.method == "POST" else None
    if action in ("accept", "reject"):
        if action == "reject":
            reject_form = RejectForm(request.POST)
            done = _reject(request, proposal, reject_form)
        else:
            accept_form = AcceptForm(request.POST)
            done = _accept(request, proposal, accept_form, prefill)
        if done:
            return redirect("agents:proposal_review", proposal.pk)
        status = 400
    return render(
        request,
        "agents/proposal_review.html",
        {
            "proposal": proposal,
            "rows": selectors.diff_rows(proposal),
            "can_review": services.can_review(request.user, proposal),
            "accept_form": accept_form,
            "reject_form": reject_form,
            "current_version": current_version,
        },
        status=status,
    )

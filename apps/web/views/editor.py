"""The record editor: create, edit (with optimistic concurrency; a conflict opens the merge page
of views.conflict), supersede, and the markdown preview."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import Space
from apps.core import secret_scan
from apps.core.errors import InvalidInput, VersionConflict
from apps.core.markdown import render_markdown
from apps.core.text import reveal_invisible
from apps.core.types import AuthenticatedHttpRequest
from apps.records import fields as record_fields
from apps.records import owners, services
from apps.records.models import Record
from apps.retrieval.services import gap_answer
from apps.web.forms import BODY_TEMPLATES, RecordForm
from apps.web.selectors import (
    form_fingerprint,
    revision_number,
    space_tags,
    submitted_twice,
)
from apps.web.views import conflict
from apps.web.views.common import (
    login_required_partial,
    record_or_404,
    service_errors,
    space_or_404,
)

MAX_PREVIEW_CHARS = services.MAX_BODY_CHARS
MAX_TAG_SUGGESTIONS = 24


def _kind_from(request: HttpRequest) -> str:
    kind = request.POST.get("kind") or request.GET.get("kind") or Record.Kind.DECISION
    return kind if kind in Record.Kind.values else Record.Kind.DECISION


def _switch_kind(request: HttpRequest, kind: str) -> tuple[dict, bool]:
    """The editor's values carried over to another kind. The body becomes the new kind's template
    only if it was still the old template (or empty); returns (initial, body_kept)."""
    initial = {name: request.POST.get(name, "") for name in CARRIED_ON_SWITCH}
    previous = request.POST.get("previous_kind", "")
    body = request.POST.get("body", "").replace("\r\n", "\n")
    untouched = not body.strip() or body.strip() == BODY_TEMPLATES.get(previous, "").strip()
    initial["body"] = BODY_TEMPLATES.get(kind, "") if untouched else body
    return initial, not untouched


# Every field of the editor except the body (which follows the kind's template), and the note.
CARRIED_ON_SWITCH = (
    *(name for name, _ in record_fields.form_fields() if name != "body"),
    "message",
)


@login_required
@require_http_methods(["GET", "POST"])
@service_errors
def record_create(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    space = space_or_404(request, slug)
    if not space.can_edit:
        raise PermissionDenied(f"You need to be an editor of {space.name} to add records.")
    kind = _kind_from(request)
    # "Create record from this gap" (retrieval's gaps page): the question as the title, and the
    # gap closed as answered once the record exists.
    from_gap = _gap_id(request)
    if request.method == "POST" and "switch_kind" in request.POST:
        form = _switched_kind_form(request, space=space, kind=kind)
    else:
        initial = _new_record_initial(request, space=space, kind=kind)
        form = RecordForm(request.POST or None, space=space, kind=kind, initial=initial)
    # (The switched form is unbound, so never valid: it is shown, not saved.)
    if request.method == "POST" and form.is_valid():
        fields = form.service_fields()
        try:
            record = _create_once(
                request,
                form,
                space=space,
                fingerprint=form_fingerprint(kind, fields),
                write=functools.partial(
                    services.record_create,
                    space=space,
                    kind=kind,
                    actor=request.user,
                    message=form.cleaned_data.get("message") or "",
                    allow_secrets=_allow_secrets(request),
                    **fields,
                ),
            )
        except InvalidInput as exc:
            _service_refused(form, exc)
        except _AlreadySent as sent:
            if sent.same_content:
                return redirect(sent.record.get_absolute_url())
            form = _sent_before(request, form, sent.record, space=space, kind=kind)
        else:
            messages.success(request, f"{record.key} created.")
            _warn_about_anchors(request, form)
            if from_gap:
                gap_answer(gap_id=from_gap, record=record, actor=request.user)
            return redirect(record.get_absolute_url())
    return _render_form(
        request, space=space, form=form, kind=kind, mode="create", from_gap=from_gap
    )


def _new_record_initial(
    request: AuthenticatedHttpRequest, *, space: Space, kind: str
) -> dict[str, str]:
    # A kind without a body template starts empty (a new kind must not make this page fail).
    initial = {"body": BODY_TEMPLATES.get(kind, ""), "status": Record.Status.DRAFT}
    if request.user.memberships.filter(space=space).exists():
        initial["owner"] = owners.form_value(user_id=request.user.pk, team_id=None)
    if request.method == "GET" and request.GET.get("title"):
        initial["title"] = request.GET["title"].replace("\x00", "")[:200]
    return initial


def _switched_kind_form(request: HttpRequest, *, space: Space, kind: str) -> RecordForm:
    """Another kind was picked: the same editor for that kind, keeping what was typed."""
    initial, body_kept = _switch_kind(request, kind)
    if body_kept:
        messages.info(
            request,
            f"Kept your text; the {Record.Kind(kind).label.lower()} template was not applied.",
        )
    return RecordForm(space=space, kind=kind, initial=initial)


class _AlreadySent(Exception):
    """This form (its submission token) already created `record`; `same_content` if it was sent
    again with the same content."""

    def __init__(self, record: Record, *, same_content: bool) -> None:
        super().__init__(record.key)
        self.record = record
        self.same_content = same_content


def _create_once[T](
    request: HttpRequest,
    form: RecordForm,
    *,
    space: Space,
    fingerprint: str,
    write: Callable[..., T],
) -> T:
    """`write(submission=...)` in one transaction, unless this form was sent before: then
    _AlreadySent. Sent again with the same content (a double-click, a resent POST), the first
    request's record is the answer; with other content (Back, change, Create), nothing is
    dropped and nothing is guessed: the text comes back with a fresh token (`_sent_before`)."""
    token = form.cleaned_data.get("submission") or ""
    with transaction.atomic():
        previous = submitted_twice(space=space, actor=request.user, token=token)
        if previous is not None:
            raise _AlreadySent(previous.record, same_content=previous.fingerprint == fingerprint)
        return write(submission=(token, fingerprint))


def _sent_before(
    request: HttpRequest, form: RecordForm, created: Record, *, space: Space, kind: str
) -> RecordForm:
    """The form as sent, with a new submission token and a message saying this form already
    created `created` and that its new text is not saved yet."""
    data = request.POST.copy()
    data["submission"] = secrets.token_urlsafe(16)
    again = RecordForm(data, space=space, kind=kind, initial=form.initial)
    again.is_valid()
    again.add_error(
        None,
        f"This form already created {created.key} ({created.title}). What you changed since "
        f"is not saved yet: press Create again to save it as a new "
        f"{Record.Kind(kind).label.lower()}, or open {created.key} and edit it there.",
    )
    return again


def _allow_secrets(request: HttpRequest) -> bool:
    """The "save anyway" box a space admin sees after the secret scan refused the text (the
    service checks the role and writes the override to the audit log)."""
    return request.POST.get("allow_secrets") == "1"


def _warn_about_anchors(request: HttpRequest, form: RecordForm) -> None:
    """Saved, but an anchor matches every file: say so where the user lands."""
    for warning in form.anchor_warnings:
        messages.warning(request, warning)


def _service_refused(form: RecordForm, exc: InvalidInput) -> None:
    form.add_service_errors(exc.details or {"__all__": [exc.message]})
    if exc.code == "secret_detected":
        form.add_error(None, exc.message)
        form.secret_refused = True


def _gap_id(request: HttpRequest) -> int | None:
    raw = request.POST.get("from_gap") or request.GET.get("gap") or ""
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _render_form(
    request: HttpRequest, *, space: Space, form: RecordForm, kind: str, mode: str, **extra: Any
) -> HttpResponse:
    if mode == "edit":
        # The editor names what it started from as the history does: by revision number.
        version = str(form["version"].value() or "")
        extra["current_revision"] = (
            revision_number(extra["record"], version=int(version))
            if version.isdigit() and len(version) < 10
            else None
        )
    return render(
        request,
        "web/record_form.html",
        {
            "space": space,
            "form": form,
            "kind": kind,
            "kinds": Record.Kind.choices,
            "mode": mode,
            "tag_suggestions": space_tags(space)[:MAX_TAG_SUGGESTIONS],
            "max_body_chars": services.MAX_BODY_CHARS,
            **extra,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@service_errors
def record_edit(request: AuthenticatedHttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    space = record.space
    if not space.can_edit:
        raise PermissionDenied(f"You need to be an editor of {space.name} to edit records.")
    data: QueryDict | None = request.POST or None
    if data is not None and "merge" in data:
        data = conflict.resolve_merge(data)
    form = RecordForm(
        data,
        space=space,
        kind=record.kind,
        record=record,
        initial=RecordForm.initial_for(record),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.record_update(
                record=record,
                actor=request.user,
                expected_version=form.cleaned_data["version"],
                changes=form.service_fields(),
                message=form.cleaned_data.get("message") or "",
                allow_secrets=_allow_secrets(request),
            )
        except VersionConflict:
            return conflict.conflict_page(request, record, form)
        except InvalidInput as exc:
            _service_refused(form, exc)
        else:
            messages.success(request, f"{record.key} saved.")
            _warn_about_anchors(request, form)
            return redirect(record.get_absolute_url())
    return _render_form(
        request, space=space, form=form, kind=record.kind, mode="edit", record=record
    )


@login_required_partial
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """Render the editor's markdown server-side, with the same sanitiser as the record page."""
    body = request.POST.get("body", "")[:MAX_PREVIEW_CHARS]
    # What looks like a credential is never shown back, here or after the save refused it.
    body, secrets = secret_scan.mask_secrets(body)
    # Bidirectional controls and invisible characters show as <U+XXXX> while editing.
    html = render_markdown(reveal_invisible(body)) if body.strip() else ""
    return render(request, "web/partials/preview.html", {"html": html, "secrets": secrets})


@login_required
@require_http_methods(["GET", "POST"])
@service_errors
def record_supersede(request: AuthenticatedHttpRequest, slug: str, key: str) -> HttpResponse:
    """Create a successor from a copy of this record and link new → old with `supersedes`."""
    old = record_or_404(request, slug, key)
    space = old.space
    if not space.can_edit:
        raise PermissionDenied(f"You need to be an editor of {space.name} to supersede records.")
    if old.status == Record.Status.SUPERSEDED:
        messages.info(request, f"{old.key} is already superseded; you can still add a successor.")
    initial = RecordForm.initial_for(old)
    initial.pop("version")
    initial["status"] = Record.Status.PROPOSED
    form = RecordForm(request.POST or None, space=space, kind=old.kind, initial=initial)
    # The old record's own links (what it depends on, implements, …) usually still apply.
    carried = list(services.carryable_links(old=old, actor=request.user))
    if request.method == "POST" and form.is_valid():
        copy = set(request.POST.getlist("copy_link"))
        fields = form.service_fields()
        try:
            new, _ = _create_once(
                request,
                form,
                space=space,
                fingerprint=form_fingerprint(old.kind, {**fields, "copy": sorted(copy)}),
                write=functools.partial(
                    services.record_supersede_with_new,
                    old=old,
                    actor=request.user,
                    fields=fields,
                    # Links ticked on the form that are still there to carry over.
                    copy_links=[link.pk for link in carried if str(link.pk) in copy],
                    message=form.cleaned_data.get("message") or "",
                    allow_secrets=_allow_secrets(request),
                ),
            )
        except InvalidInput as exc:
            _service_refused(form, exc)
        except _AlreadySent as sent:
            if sent.same_content:
                return redirect(sent.record.get_absolute_url())
            form = _sent_before(request, form, sent.record, space=space, kind=old.kind)
        else:
            messages.success(request, f"{new.key} now supersedes {old.key}.")
            _warn_about_anchors(request, form)
            return redirect(new.get_absolute_url())
    return _render_form(
        request,
        space=space,
        form=form,
        kind=old.kind,
        mode="supersede",
        record=old,
        carried=carried,
        copy_checked=set(request.POST.getlist("copy_link"))
        if request.method == "POST"
        else {str(link.pk) for link in carried},
    )

"""Record page, create / edit (with optimistic concurrency), supersede, verify, archive."""

from __future__ import annotations

import difflib
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import access
from apps.core import secret_scan
from apps.core.errors import InvalidInput, VersionConflict
from apps.core.markdown import render_markdown
from apps.core.text import reveal_invisible
from apps.records import fields as record_fields
from apps.records import owners, services
from apps.records import selectors as record_selectors
from apps.records.models import Link, Record, Verification
from apps.records.policy import valid_until_note, valid_until_passed
from apps.retrieval.selectors import record_usage
from apps.retrieval.services import gap_answer
from apps.web.forms import BODY_TEMPLATES, INVERSE_PREFIX, LinkForm, RecordForm
from apps.web.selectors import form_fingerprint, link_candidates, space_tags, submitted_twice
from apps.web.views.common import (
    login_required_partial,
    record_or_404,
    service_errors,
    space_or_404,
)

MAX_PREVIEW_CHARS = services.MAX_BODY_CHARS
MAX_VERIFICATIONS = 10
MAX_TAG_SUGGESTIONS = 24


@login_required
@service_errors
def record_detail(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key, detail=True)
    # Linked records may live in other spaces; their URLs need the space (one query, not N).
    prefetch_related_objects(
        [record], "outgoing_links__target__space", "incoming_links__source__space"
    )
    # Related records in spaces the viewer cannot see are shown without title, key or URL.
    record_selectors.present_reasons(request.user, record.open_reasons)
    groups = record_selectors.links_grouped(record, principal=request.user)
    outgoing, incoming = (
        _by_label(groups.get("outgoing", [])),
        _by_label(groups.get("incoming", [])),
    )
    successor = (
        record_selectors.successor_for(principal=request.user, record=record)
        if record.status == Record.Status.SUPERSEDED
        else None
    )
    verifications, more_verifications = record_selectors.verification_timeline(
        record, limit=MAX_VERIFICATIONS
    )
    revisions = record_selectors.present_revisions(
        request.user, record.revisions.select_related("author")[:8]
    )
    return render(
        request,
        "web/record_detail.html",
        {
            "record": record,
            "space": record.space,
            "outgoing": outgoing,
            "incoming": incoming,
            "successor": successor,
            "verifications": verifications,
            "more_verifications": more_verifications,
            "review_overdue": record.next_review_at <= timezone.now(),
            # Derived like the badge, so it shows before the sweep has raised its reason.
            "valid_until_unflagged": valid_until_passed(record.valid_until, now=timezone.now())
            and not any(r.cause == "valid_until" for r in record.open_reasons),
            "revisions": revisions,
            "revision_count": record.revisions.count(),
            "usage": record_usage(record_ids=[record.pk])[record.pk],
            "can_verify": access.can_verify(request.user, record),
            "link_form": LinkForm(initial={"type": Link.Type.DEPENDS_ON}),
        },
    )


def _by_label(items):
    grouped: dict[str, list] = {}
    for label, other, link in items:
        grouped.setdefault(label, []).append((other, link))
    return sorted(grouped.items())


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
def record_create(request: HttpRequest, slug: str) -> HttpResponse:
    space = space_or_404(request, slug)
    if not space.can_edit:
        raise PermissionDenied(f"You need to be an editor of {space.name} to add records.")
    kind = _kind_from(request)
    # A kind without a body template starts empty (a new kind must not make this page fail).
    initial = {"body": BODY_TEMPLATES.get(kind, ""), "status": Record.Status.DRAFT}
    if request.user.memberships.filter(space=space).exists():
        initial["owner"] = owners.form_value(user_id=request.user.pk, team_id=None)
    # "Create record from this gap" (retrieval's gaps page): the question as the title, and the
    # gap closed as answered once the record exists.
    from_gap = _gap_id(request)
    if request.method == "GET" and request.GET.get("title"):
        initial["title"] = request.GET["title"].replace("\x00", "")[:200]
    if request.method == "POST" and "switch_kind" in request.POST:
        # Another kind was picked: show the same editor for that kind, keeping what was typed.
        initial, body_kept = _switch_kind(request, kind)
        if body_kept:
            messages.info(
                request,
                f"Kept your text; the {Record.Kind(kind).label.lower()} template was not applied.",
            )
        form = RecordForm(space=space, kind=kind, initial=initial)
        return _render_form(
            request, space=space, form=form, kind=kind, mode="create", from_gap=from_gap
        )
    form = RecordForm(request.POST or None, space=space, kind=kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        fields = form.service_fields()
        token = form.cleaned_data.get("submission") or ""
        fingerprint = form_fingerprint(kind, fields)
        try:
            with transaction.atomic():
                previous = submitted_twice(space=space, actor=request.user, token=token)
                record = None
                if previous is None:
                    record = services.record_create(
                        space=space,
                        kind=kind,
                        actor=request.user,
                        message=form.cleaned_data.get("message") or "",
                        allow_secrets=_allow_secrets(request),
                        submission=(token, fingerprint),
                        **fields,
                    )
        except InvalidInput as exc:
            _service_refused(form, exc)
        else:
            if previous is not None and previous.fingerprint == fingerprint:
                # The same form with the same content sent again (a double-click, a resent
                # POST): the first request's record is the answer.
                return redirect(previous.record.get_absolute_url())
            if previous is not None:
                # The same form sent again with other content (Back, change, Create): nothing
                # is dropped and nothing is guessed; the text comes back with a fresh token.
                form = _sent_before(request, form, previous.record, space=space, kind=kind)
            else:
                messages.success(request, f"{record.key} created.")
                _warn_about_anchors(request, form)
                if from_gap:
                    gap_answer(gap_id=from_gap, record=record, actor=request.user)
                return redirect(record.get_absolute_url())
    return _render_form(
        request, space=space, form=form, kind=kind, mode="create", from_gap=from_gap
    )


def _sent_before(request: HttpRequest, form, created: Record, *, space, kind: str) -> RecordForm:
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
    again.sent_before = created
    return again


def _allow_secrets(request: HttpRequest) -> bool:
    """The "save anyway" box a space admin sees after the secret scan refused the text (the
    service checks the role and writes the override to the audit log)."""
    return request.POST.get("allow_secrets") == "1"


def _warn_about_anchors(request: HttpRequest, form: RecordForm) -> None:
    """Saved, but an anchor matches every file: say so where the user lands."""
    for warning in form.anchor_warnings:
        messages.warning(request, warning)


def _service_refused(form, exc: InvalidInput) -> None:
    form.add_service_errors(exc.details or {"__all__": [exc.message]})
    if exc.code == "secret_detected":
        form.add_error(None, exc.message)
        form.secret_refused = True


def _gap_id(request: HttpRequest) -> int | None:
    raw = request.POST.get("from_gap") or request.GET.get("gap") or ""
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _render_form(request: HttpRequest, *, space, form, kind: str, mode: str, **extra):
    if mode == "edit":
        # The editor names what it started from as the history does: by revision number.
        version = str(form["version"].value() or "")
        extra["current_revision"] = (
            _revision_number(extra["record"], version=int(version))
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
def record_edit(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    space = record.space
    if not space.can_edit:
        raise PermissionDenied(f"You need to be an editor of {space.name} to edit records.")
    data = request.POST or None
    if data is not None and "merge" in data:
        data = _resolve_merge(data)
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
            return _conflict(request, record, form)
        except InvalidInput as exc:
            _service_refused(form, exc)
        else:
            messages.success(request, f"{record.key} saved.")
            _warn_about_anchors(request, form)
            return redirect(record.get_absolute_url())
    return _render_form(
        request, space=space, form=form, kind=record.kind, mode="edit", record=record
    )


# (form field, label) in the editor's order, the body last (apps.records.fields).
CONFLICT_FIELDS = record_fields.form_fields()


def _conflict(request: HttpRequest, record: Record, form: RecordForm) -> HttpResponse:
    """Someone saved first. Merge field by field against the version this edit started from:
    yours where only you changed a field, theirs where only they did, and a question where you
    both changed it differently. Nothing is saved until the merge is confirmed."""
    current = Record.objects.select_related("owner_user", "owner_team", "updated_by").get(
        pk=record.pk
    )
    your_version = form.cleaned_data.get("version")
    base_revision = (
        current.revisions.filter(version=your_version).order_by("-number").first()
        if your_version
        else None
    )
    names = [(n, label) for n, label in CONFLICT_FIELDS if n in form.fields]
    base = _values_from_snapshot(base_revision.snapshot) if base_revision else None
    theirs = _values_from_record(current)
    mine = _values_from_form(form)
    saved_revision = _revision_number(current)
    rows, merged = [], {}
    for name, label in names:
        t, m = theirs[name], mine[name]
        b = base[name] if base is not None else None
        if t == m:
            merged[name] = t
            continue
        if b == m:
            who = "theirs"  # only they changed it: keep theirs
            merged[name] = t
        elif b == t:
            who = "mine"  # only you changed it: yours
            merged[name] = m
        else:
            who = "both"  # you both changed it, differently: ask
        a_text, b_text = (
            (_owner_text(t), _owner_text(m)) if name == "owner" else (_text(t), _text(m))
        )
        diff = list(
            difflib.unified_diff(
                a_text.splitlines(),
                b_text.splitlines(),
                f"r{saved_revision} (saved)",
                "your edit",
                lineterm="",
            )
        )
        rows.append(
            {
                "name": name,
                "label": label,
                "who": who,
                "theirs": a_text,
                "mine": b_text,
                "theirs_value": t,
                "mine_value": m,
                "diff": diff,
            }
        )
    if not rows:
        # What is saved is exactly what this form holds: the same form sent twice, or two people
        # making the same change. Nothing to resolve.
        messages.success(request, f"{record.key} saved.")
        return redirect(current.get_absolute_url())
    merged_initial = {**merged, "message": form.cleaned_data.get("message") or ""}
    rebase = RecordForm(
        space=record.space,
        kind=record.kind,
        record=current,
        initial={**merged_initial, "version": current.version},
    )
    return render(
        request,
        "web/record_conflict.html",
        {
            "record": current,
            "space": record.space,
            "rows": rows,
            "asked": [row for row in rows if row["who"] == "both"],
            "merged": merged_initial,
            "your_version": your_version,
            # Named by revision number, as the history and the record page name them.
            "your_revision": _revision_number(current, version=your_version),
            "saved_revision": saved_revision,
            "rebase_form": rebase,
        },
        status=409,
    )


def _revision_number(record: Record, *, version: int | None = None) -> int | None:
    """The newest revision number of `record` (at `version`, if given)."""
    revisions = record.revisions.order_by("-number")
    if version is not None:
        revisions = revisions.filter(version=version)
    return revisions.values_list("number", flat=True).first()


def _values_from_snapshot(snap: dict) -> dict[str, str]:
    """A snapshot's editable fields as the editor's text boxes hold them, by form field."""
    values: dict[str, str] = {}
    for spec in record_fields.FIELDS:
        if spec.kind == record_fields.OWNER:
            value = owners.form_value(
                user_id=snap.get("owner_user"), team_id=snap.get("owner_team")
            )
        elif spec.kind == record_fields.LIST:
            value = spec.separator.join(snap.get(spec.name) or [])
        else:
            value = snap.get(spec.name) or ""
        values[spec.form] = value.replace("\r\n", "\n") if spec.name == "body" else value
    return values


def _values_from_record(record: Record) -> dict[str, str]:
    return _values_from_snapshot(services.snapshot(record))


def _values_from_form(form: RecordForm) -> dict[str, str]:
    """What the form would store, in the same shape as a snapshot's values ("a,b" and "a, b"
    are the same tags)."""
    fields = form.service_fields()
    owner_user, owner_team = owners.split(form.cleaned_data.get("owner"))
    snap = {
        **fields,
        "owner_user": owner_user.pk if owner_user else None,
        "owner_team": owner_team.pk if owner_team else None,
        "decided_on": fields.get("decided_on").isoformat() if fields.get("decided_on") else "",
        "valid_until": fields["valid_until"].isoformat() if fields.get("valid_until") else "",
    }
    if "status" not in fields:
        snap["status"] = form.record.status if form.record else ""
    return _values_from_snapshot(snap)


def _owner_text(value: str) -> str:
    try:
        owner = owners.from_form(value)
    except InvalidInput:
        owner = None
    return _owner_label(owner)


def _resolve_merge(data):
    """The conflict page's merge form as an ordinary edit: each field both people changed takes
    the side picked for it ("mine" or "theirs"; theirs when none was picked)."""
    data = data.copy()
    for key in [k for k in data if k.startswith("pick__")]:
        name = key.removeprefix("pick__")
        side = data.get(key) if data.get(key) in ("mine", "theirs") else "theirs"
        data[name] = data.get(f"{side}__{name}", "")
    return data


def _text(value) -> str:
    if value is None:
        return ""
    return str(value).replace("\r\n", "\n")


def _owner_label(owner) -> str:
    return str(owner) if owner else "Unowned"


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


class _Resubmitted(Exception):
    """The supersede form was sent again with other content: show it again, create nothing."""


@login_required
@require_http_methods(["GET", "POST"])
@service_errors
def record_supersede(request: HttpRequest, slug: str, key: str) -> HttpResponse:
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
            with transaction.atomic():
                token = form.cleaned_data.get("submission") or ""
                fingerprint = form_fingerprint(old.kind, {**fields, "copy": sorted(copy)})
                previous = submitted_twice(space=space, actor=request.user, token=token)
                if previous is not None and previous.fingerprint == fingerprint:
                    # Sent twice (double-click): the first request's successor is the answer.
                    return redirect(previous.record.get_absolute_url())
                if previous is not None:
                    form = _sent_before(request, form, previous.record, space=space, kind=old.kind)
                    raise _Resubmitted
                new, _ = services.record_supersede_with_new(
                    old=old,
                    actor=request.user,
                    fields=fields,
                    # Links ticked on the form that are still there to carry over.
                    copy_links=[link.pk for link in carried if str(link.pk) in copy],
                    message=form.cleaned_data.get("message") or "",
                    allow_secrets=_allow_secrets(request),
                    submission=(token, fingerprint),
                )
        except InvalidInput as exc:
            _service_refused(form, exc)
        except _Resubmitted:
            pass
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


@login_required
@require_POST
@service_errors
def record_verify(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    outcome = request.POST.get("outcome", Verification.Outcome.STILL_TRUE)
    note = request.POST.get("note", "").replace("\x00", "")[:500]
    try:
        verification = services.record_verify(
            record=record,
            actor=request.user,
            outcome=outcome,
            note=note,
            valid_until=request.POST.get("valid_until") or None,
        )
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return redirect(record.get_absolute_url())
    if outcome == Verification.Outcome.NEEDS_UPDATE:
        messages.info(request, f"Noted that {record.key} needs an update. Edit it below.")
        return redirect("web:record_edit", slug=record.space.slug, key=record.key)
    messages.success(
        request, f"Verified: {record.key} is still true.{valid_until_note(verification)}"
    )
    return redirect(record.get_absolute_url())


@login_required
@require_POST
@service_errors
def record_archive(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    if request.POST.get("action") == "unarchive":
        services.record_unarchive(record=record, actor=request.user)
        messages.success(request, f"{record.key} is back in the space.")
    else:
        services.record_archive(record=record, actor=request.user)
        messages.success(request, f"{record.key} archived. Its history is kept.")
    return redirect(record.get_absolute_url())


@login_required
@require_POST
@service_errors
def link_add(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    form = LinkForm(request.POST)
    back = record.get_absolute_url() + "#links"
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        label = {"type": "Link type", "note": "Note", "q": "Record", "target": "Record"}
        messages.error(request, f"{label.get(field, field)}: {errors[0]} Nothing was linked.")
        return redirect(back)
    text = (form.cleaned_data.get("target") or form.cleaned_data.get("q") or "").strip()
    if not text:
        messages.error(request, "Type a key or words from the title, then pick a record.")
        return redirect(back)
    target = record_selectors.record_get_by_key(
        principal=request.user, space_slug=record.space.slug, key=text
    )
    candidates = []
    if target is None:
        candidates = link_candidates(principal=request.user, record=record, text=text, limit=2)
        if len(candidates) == 1:
            target = candidates[0]
    if target is not None and target.pk == record.pk:
        messages.error(request, f"{record.key} cannot link to itself.")
        return redirect(back)
    if target is None:
        if candidates:
            problem = f"“{text}” matches several records; pick one from the list as you type."
        else:
            problem = f"No record in {record.space.name} matches “{text}”."
        messages.error(request, problem + " Nothing was linked.")
        return redirect(back)
    link_type = form.cleaned_data["type"]
    source = record
    if link_type.startswith(INVERSE_PREFIX):
        link_type = link_type.removeprefix(INVERSE_PREFIX)
        source, target = target, record
    try:
        link = services.record_link(
            source=source,
            target=target,
            type=link_type,
            note=form.cleaned_data.get("note", ""),
            actor=request.user,
        )
    except InvalidInput as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Linked: {source.key} {link.get_type_display()} {target.key}.")
    return redirect(back)


@login_required
@require_POST
@service_errors
def link_remove(request: HttpRequest, slug: str, key: str, link_id: int) -> HttpResponse:
    record = record_or_404(request, slug, key)
    link = (
        Link.objects.select_related("source__space", "target__space")
        .filter(pk=link_id)
        .filter(source=record)
        .first()
    ) or (
        Link.objects.select_related("source__space", "target__space")
        .filter(pk=link_id, target=record)
        .first()
    )
    if link is None:
        messages.error(request, "That link no longer exists.")
        return redirect(record.get_absolute_url() + "#links")
    label = f"{link.source.key} {link.get_type_display()} {link.target.key}"
    services.record_unlink(link=link, actor=request.user)
    messages.success(request, f"Removed: {label}.")
    return redirect(record.get_absolute_url() + "#links")


@login_required_partial
@service_errors
def link_search(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """htmx: the picker's results as the user types."""
    record = record_or_404(request, slug, key)
    text = request.GET.get("q", "")
    results = link_candidates(principal=request.user, record=record, text=text)
    return render(
        request, "web/partials/link_results.html", {"results": results, "text": text.strip()}
    )

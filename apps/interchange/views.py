"""Web pages: upload a zip to import, watch the job, download a space as a zip of markdown."""

from __future__ import annotations

import io
import zipfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts import access
from apps.accounts.models import Space
from apps.core.errors import ServiceError
from apps.interchange import services, sync
from apps.interchange.forms import ImportForm, RepoLinkForm
from apps.interchange.models import ImportJob, RepoLink


def _space(request: HttpRequest, slug: str) -> Space:
    return get_object_or_404(Space.objects.visible_to(request.user), slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest, slug: str) -> HttpResponse:
    space = _space(request, slug)
    can_edit = access.can_edit(request.user, space)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not can_edit:
            return render(
                request, "interchange/import.html", _context(space, form, False), status=403
            )
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = services.import_job_create(
                    space=space,
                    actor=request.user,
                    data=upload.read(),
                    filename=upload.name,
                    kind=form.cleaned_data["kind"] or "decision",
                    owner_email=form.cleaned_data["owner"] or "",
                    dry_run=form.cleaned_data["dry_run"],
                    overwrite_edits=form.cleaned_data["overwrite_edits"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("interchange:job", uid=job.uid)
    return render(request, "interchange/import.html", _context(space, form, can_edit))


def _context(space: Space, form: ImportForm, can_edit: bool) -> dict:
    return {
        "space": space,
        "form": form,
        "can_edit": can_edit,
        "jobs": ImportJob.objects.filter(space=space).select_related("created_by")[:10],
    }


@login_required
@require_GET
def job_page(request: HttpRequest, uid) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("space", "created_by"), uid=uid)
    if not access.can_view(request.user, job.space):
        raise Http404("No such import.")
    template = (
        "interchange/partials/job_status.html"
        if request.headers.get("HX-Request")
        else "interchange/job.html"
    )
    return render(request, template, {"job": job, "space": job.space})


@login_required
@require_GET
def export_zip(request: HttpRequest, slug: str) -> HttpResponse:
    space = _space(request, slug)
    files = services.export_space(space=space, actor=request.user)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for exported in files:
            archive.writestr(f"{space.slug}/{exported.path}", exported.content)
    stamp = timezone.now().strftime("%Y%m%d")
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{space.slug}-records-{stamp}.zip"'
    return response


# The link's settings shown back in the form (never the credential).
_LINK_FIELDS = ("remote_url", "branch", "folder", "push_branch", "username")


@login_required
@require_http_methods(["GET", "POST"])
def sync_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The repository link: its settings (admins), the last sync, its result, and the files
    waiting for a person; Pull / Push buttons (editors)."""
    space = _space(request, slug)
    link = RepoLink.objects.filter(space=space).first()
    can_admin, can_edit = (
        access.can_admin(request.user, space),
        access.can_edit(request.user, space),
    )
    initial = {name: getattr(link, name) for name in _LINK_FIELDS} if link else None
    action = request.POST.get("action", "")
    form = RepoLinkForm(request.POST if action == "save" else None, initial=initial)
    status, error = 200, ""
    if request.method == "POST":
        try:
            if _sync_action(request, space, action, form):
                return redirect("interchange:sync", slug=space.slug)
            status = 400
        except ServiceError as exc:
            error = exc.message
            status = 403 if exc.code == "forbidden" else 400
    return render(
        request,
        "interchange/sync.html",
        {
            "space": space,
            "link": RepoLink.objects.filter(space=space).first(),
            "form": form,
            "can_admin": can_admin,
            "can_edit": can_edit,
            "error": error,
        },
        status=status,
    )


def _sync_action(request: HttpRequest, space: Space, action: str, form: RepoLinkForm) -> bool:
    """Save the settings, or pull / push / sync, leaving the outcome as messages; False when
    the form or the action is not valid."""
    if action == "save":
        if not form.is_valid():
            return False
        data = dict(form.cleaned_data)
        remove = data.pop("remove_credential")
        credential = data.pop("credential") or None
        sync.repo_link_save(
            space=space,
            actor=request.user,
            credential="" if remove else credential,
            **data,
        )
        messages.success(request, "Repository settings saved.")
        return True
    if action not in ("pull", "push", "sync"):
        return False
    link = sync.require_sync_rights(space=space, actor=request.user)
    runner = {
        "pull": lambda: [sync.repo_pull(link=link)],
        "push": lambda: [sync.repo_push(link=link)],
        "sync": lambda: sync.repo_sync(link=link),
    }[action]
    for outcome in runner():
        level = messages.error if outcome.result == "failed" else messages.info
        level(request, outcome.message)
    return True

"""Background import jobs (web upload and API): store the zip, check it at once, run it on the
worker with progress on the job."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import ApiToken, Space, User
from apps.core.errors import Forbidden, InvalidInput, ServiceError
from apps.interchange.importing import import_files, require_edit
from apps.interchange.models import ImportJob
from apps.interchange.reading import resolve_owner
from apps.interchange.sources import check_zip, read_zip
from apps.interchange.tasks import run_import_job
from apps.records.models import Record


def import_job_create(
    *,
    space: Space,
    actor,
    data: bytes,
    filename: str = "",
    kind: str = Record.Kind.DECISION,
    owner_email: str = "",
    dry_run: bool = False,
    overwrite_edits: bool = False,
):
    """Store an uploaded zip and queue its import (after commit). Checks everything that can be
    checked now, so a bad upload is refused at once instead of failing in the background."""
    require_edit(actor, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(
            f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.",
            details={"kind": ["Invalid."]},
        )
    limit = settings.CONTEXTKB_IMPORT_MAX_ZIP_BYTES
    if not data:
        raise InvalidInput("The upload is empty.", details={"file": ["Empty file."]})
    if len(data) > limit:
        raise InvalidInput(
            f"The zip is larger than {limit:,} bytes.", details={"file": ["Too large."]}
        )
    check_zip(data)
    owner_email = (owner_email or "").strip()
    if owner_email:
        owner, _, problem = resolve_owner(owner_email, space=space)
        if owner is None:
            raise InvalidInput(f"{problem[:1].upper()}{problem[1:]}.", details={"owner": [problem]})
    job = ImportJob.objects.create(
        space=space,
        created_by=access.user_of(actor),
        token=actor if isinstance(actor, ApiToken) else None,
        filename=(filename or "")[:255],
        archive=data,
        kind=kind,
        owner_email=owner_email,
        dry_run=dry_run,
        overwrite_edits=overwrite_edits,
    )
    transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_run(*, job) -> None:
    """Run a stored import job to the end, recording progress and the summary on the job."""
    actor = job.token if job.token_id else job.created_by
    owner = User.objects.filter(email__iexact=job.owner_email).first() if job.owner_email else None
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.RUNNING, started_at=now, phase="reading", error=""
    )
    last_write = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        # At most a few writes a second: progress is for people watching, not an audit log.
        moment = time.monotonic()
        if done == total or moment - last_write[0] > 0.3:
            last_write[0] = moment
            ImportJob.objects.filter(pk=job.pk).update(phase=phase, done=done, total=total)

    try:
        if actor is None:
            raise Forbidden("The user who started this import no longer exists.")
        files = read_zip(bytes(job.archive or b""))
        summary = import_files(
            space=job.space,
            files=files,
            actor=actor,
            kind=job.kind,
            owner=owner,
            dry_run=job.dry_run,
            overwrite_edits=job.overwrite_edits,
            progress=progress,
        )
    except ServiceError as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.FAILED,
            error=exc.message,
            finished_at=timezone.now(),
            archive=None,
        )
        return
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.DONE,
        phase="done",
        summary=summary.as_dict(),
        finished_at=timezone.now(),
        archive=None,
    )

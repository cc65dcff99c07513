"""Background imports (uploads from the web UI and the API)."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


# Safe to repeat (an import is idempotent), so acknowledged late: a worker lost mid-import means
# the job runs again rather than hanging in "running".
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def run_import_job(job_id: int) -> None:
    from apps.interchange.jobs import import_job_run
    from apps.interchange.models import ImportJob

    job = (
        ImportJob.objects.select_related("space", "token__user", "created_by")
        .filter(pk=job_id)
        .first()
    )
    if job is None or job.state in (ImportJob.State.DONE, ImportJob.State.FAILED):
        return
    try:
        import_job_run(job=job)
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        from django.utils import timezone

        ImportJob.objects.filter(pk=job_id).update(
            state=ImportJob.State.FAILED,
            error=f"The import stopped unexpectedly: {type(exc).__name__}.",
            finished_at=timezone.now(),
        )
        raise


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=900, time_limit=960)
def sync_repo(link_id: int, direction: str = "both") -> None:
    """Pull (and push) one linked repository folder; quietly nothing when the link is gone."""
    from apps.interchange import sync
    from apps.interchange.models import RepoLink

    link = RepoLink.objects.filter(pk=link_id).first()
    if link is None:
        return
    if direction == "pull":
        sync.repo_pull(link=link)
    elif direction == "push":
        sync.repo_push(link=link)
    else:
        sync.repo_sync(link=link)


@shared_task(ignore_result=True)
def sync_all_repos() -> None:
    """The beat entry: one sync task per linked space."""
    from apps.interchange.models import RepoLink

    for link_id in RepoLink.objects.values_list("pk", flat=True):
        sync_repo.delay(link_id)

"""Background imports: a zip uploaded in the browser or posted to the API becomes an ImportJob
whose Celery task imports it and records progress and the summary."""

import contextlib
import io
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.interchange.models import ImportJob
from apps.interchange.tasks import run_import_job
from apps.records.models import Link, Record
from tests.factories import make_token
from tests.workers import database_env, start_celery_worker

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"adr/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def _upload(data: bytes, name: str = "adr.zip"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/zip")


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.API_THROTTLE_RATES = {"token": "100000/minute", "ip": "100000/minute"}
    cache.clear()


@pytest.mark.django_db
def test_uploading_a_zip_in_the_browser_imports_it_in_the_background(
    client, space, owner, adr_folder, django_capture_on_commit_callbacks
):
    client.force_login(owner, backend=MODEL_BACKEND)
    page = client.get(f"/s/{space.slug}/import/")
    assert page.status_code == 200 and b"Start import" in page.content

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            f"/s/{space.slug}/import/",
            {"file": _upload(_zip_of(adr_folder)), "kind": "decision", "owner": owner.email},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.uid}/"
    assert len(queued) == 1  # the task is queued only once the upload is committed
    assert job.state == "pending" and Record.objects.count() == 0

    waiting = client.get(f"/imports/{job.uid}/")
    assert b"Waiting to start" in waiting.content and b'hx-trigger="every 2s"' in waiting.content

    run_import_job(job.pk)  # what the worker does

    job.refresh_from_db()
    assert job.state == "done" and job.archive is None and job.percent == 100
    assert job.summary["counts"]["created"] == 6
    assert Record.objects.filter(space=space, owner_user=owner).count() == 6
    done = client.get(f"/imports/{job.uid}/")
    assert b"<strong>6</strong> created" in done.content
    assert b"index page, not a decision" in done.content
    assert b"hx-trigger" not in done.content


@pytest.mark.django_db
def test_viewers_cannot_upload_and_outsiders_cannot_see_the_page(
    client, space, viewer, outsider, adr_folder
):
    client.force_login(viewer, backend=MODEL_BACKEND)
    response = client.post(f"/s/{space.slug}/import/", {"file": _upload(_zip_of(adr_folder))})
    assert response.status_code == 403 and ImportJob.objects.count() == 0
    client.force_login(outsider, backend=MODEL_BACKEND)
    assert client.get(f"/s/{space.slug}/import/").status_code == 404


@pytest.mark.django_db
def test_a_broken_upload_is_refused_on_the_page_with_a_message(client, space, owner):
    client.force_login(owner, backend=MODEL_BACKEND)
    response = client.post(f"/s/{space.slug}/import/", {"file": _upload(b"not a zip at all")})
    assert response.status_code == 200
    assert b"That is not a zip file." in response.content
    assert ImportJob.objects.count() == 0


@pytest.mark.django_db
def test_api_import_answers_202_and_reports_progress_then_the_summary(
    space, owner, outsider, adr_folder, django_capture_on_commit_callbacks
):
    api = APIClient()
    plain = make_token(owner, scope=ApiToken.Scope.READ_WRITE)[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plain}"}
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(
            "/api/v1/import/",
            {"file": _upload(_zip_of(adr_folder)), "space": space.slug, "dry_run": "true"},
            format="multipart",
            **auth,
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending" and body["dry_run"] is True
    assert response["Location"].endswith(f"/api/v1/import/{body['id']}/")

    run_import_job(ImportJob.objects.get().pk)

    progress = api.get(f"/api/v1/import/{body['id']}/", **auth).json()
    assert progress["state"] == "done" and progress["percent"] == 100
    assert progress["summary"]["counts"]["created"] == 6
    assert progress["summary"]["counts"]["links_created"] == 3
    assert Record.objects.count() == 0  # a dry run

    stranger = make_token(outsider, scope=ApiToken.Scope.READ_WRITE)[1]
    hidden = api.get(f"/api/v1/import/{body['id']}/", HTTP_AUTHORIZATION=f"Bearer {stranger}")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_api_import_refuses_read_only_tokens_and_bad_files_with_the_error_shape(space, owner):
    api = APIClient()
    read = make_token(owner, scope=ApiToken.Scope.READ)[1]
    rw = make_token(owner, scope=ApiToken.Scope.READ_WRITE)[1]
    denied = api.post(
        "/api/v1/import/",
        {"file": _upload(b"PK"), "space": space.slug},
        format="multipart",
        HTTP_AUTHORIZATION=f"Bearer {read}",
    )
    assert denied.status_code == 403
    bad = api.post(
        "/api/v1/import/",
        {"file": _upload(b"plain text"), "space": space.slug},
        format="multipart",
        HTTP_AUTHORIZATION=f"Bearer {rw}",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "That is not a zip file."
    missing = api.post(
        "/api/v1/import/",
        {"space": space.slug},
        format="multipart",
        HTTP_AUTHORIZATION=f"Bearer {rw}",
    )
    assert missing.status_code == 400 and "file" in missing.json()["error"]["details"]
    assert ImportJob.objects.count() == 0


@pytest.fixture
def private_worker():
    """A real worker on a private queue of the shared broker, on the test database. Import jobs
    sent from this process go to that queue, and so does everything the worker itself enqueues
    (the embeddings of the imported records): no other worker can take them."""
    queue = f"interchange-test-{uuid.uuid4().hex[:8]}"
    run_import_job.apply_async = _on_queue(run_import_job.apply_async, queue)
    worker = start_celery_worker(queue, database_env(CELERY_TASK_DEFAULT_QUEUE=queue))
    try:
        yield worker
    finally:
        del run_import_job.apply_async
        worker.terminate()
        worker.output = worker.communicate(timeout=20)[0].decode(errors="replace")
        _purge(queue)


def _purge(queue: str) -> None:
    """Drop what is left on the private queue (embeddings the worker had no time for)."""
    from contextkb.celery import app

    # A queue that was never declared has nothing to purge.
    with app.connection_for_write() as connection, contextlib.suppress(Exception):
        connection.default_channel.queue_purge(queue)


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_an_api_import_to_the_end(
    space, owner, adr_folder, private_worker
):
    """The whole path: API → committed job → broker → worker process → progress over the API."""
    api = APIClient()
    plain = make_token(owner, scope=ApiToken.Scope.READ_WRITE)[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plain}"}
    response = api.post(
        "/api/v1/import/",
        {"file": _upload(_zip_of(adr_folder)), "space": space.slug},
        format="multipart",
        **auth,
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = api.get(response["Location"], **auth).json()
        if state["state"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert state and state["state"] == "done", state
    assert state["summary"]["counts"]["created"] == 6
    assert Record.objects.filter(space=space).count() == 6
    assert Link.objects.filter(source__space=space, type="supersedes").count() == 2


def _on_queue(apply_async, queue):
    def send(*args, **kwargs):
        kwargs.setdefault("queue", queue)
        return apply_async(*args, **kwargs)

    return send


@pytest.mark.django_db
def test_api_import_can_let_the_files_win_over_edits_made_in_the_app(
    space, owner, adr_folder, django_capture_on_commit_callbacks
):
    from apps.interchange import services, sources
    from apps.records import services as record_services

    services.import_files(space=space, files=sources.read_folder(adr_folder), actor=owner)
    dec10 = Record.objects.get(space=space, key="DEC-10")
    record_services.record_update(
        record=dec10, actor=owner, expected_version=None, changes={"body": "Rewritten here."}
    )
    path = adr_folder / "govuk-aws/0010-terraform-directory-structure.md"
    path.write_text(path.read_text() + "\nUpstream change.\n")
    api = APIClient()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token(owner, scope='read_write')[1]}"}
    jobs = []
    for overwrite in ("false", "true"):
        with django_capture_on_commit_callbacks(execute=False):
            response = api.post(
                "/api/v1/import/",
                {
                    "file": _upload(_zip_of(adr_folder)),
                    "space": space.slug,
                    "overwrite_edits": overwrite,
                },
                format="multipart",
                **auth,
            )
        assert response.json()["overwrite_edits"] is (overwrite == "true")
        run_import_job(ImportJob.objects.get(uid=response.json()["id"]).pk)
        jobs.append(api.get(response["Location"], **auth).json()["summary"])
        if overwrite == "false":
            assert Record.objects.get(pk=dec10.pk).body == "Rewritten here."

    kept, overwritten = jobs
    assert "not overwritten" in next(
        s["reason"]
        for s in kept["skipped"]
        if s["path"].endswith("0010-terraform-directory-structure.md")
    )
    assert [u["key"] for u in overwritten["updated"]] == ["DEC-10"]
    assert Record.objects.get(pk=dec10.pk).body == path.read_text().split("\n", 2)[2]

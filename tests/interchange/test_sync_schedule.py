"""The scheduled pull (`sync_all_repos`, the beat entry) run by a real Celery worker against real
local git remotes: every linked space is synced, and a remote that is gone fails alone, with its
message on that space's sync page."""

import contextlib
import shutil
import time
import uuid

import pytest

from apps.accounts.models import Membership
from apps.interchange import sync
from apps.interchange.models import RepoLink
from apps.interchange.tasks import sync_all_repos, sync_repo
from apps.records.models import Record
from tests.factories import MembershipFactory, SpaceFactory
from tests.interchange.test_sync import git
from tests.workers import database_env, start_celery_worker

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _remote(root, name: str, title: str):
    """A bare repository `name.git` whose main holds docs/adr/0001-<title>.md."""
    bare = root / f"{name}.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = root / f"{name}-work"
    git(root, "clone", "-q", str(bare), str(work))
    (work / "docs" / "adr").mkdir(parents=True)
    (work / "docs" / "adr" / "0001-first.md").write_text(
        f"# 1. {title}\n\nDate: 2026-11-01\n\n## Status\n\nAccepted\n\n## Decision\n\n{title}.\n"
    )
    git(work, "checkout", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "First ADR")
    git(work, "push", "-q", "origin", "main")
    return bare


@pytest.fixture
def sync_worker(settings):
    """A real worker on a private queue, allowed file:// remotes; the sync tasks this process
    sends go to that queue, as does everything the worker enqueues (embeddings)."""
    settings.CONTEXTKB_SYNC_ALLOW_FILE_REMOTES = True
    queue = f"sync-test-{uuid.uuid4().hex[:8]}"
    original = sync_repo.apply_async

    def on_queue(*args, **kwargs):
        kwargs.setdefault("queue", queue)
        return original(*args, **kwargs)

    sync_repo.apply_async = on_queue
    worker = start_celery_worker(
        queue,
        database_env(CELERY_TASK_DEFAULT_QUEUE=queue, CONTEXTKB_SYNC_ALLOW_FILE_REMOTES="true"),
    )
    try:
        yield worker
    finally:
        del sync_repo.apply_async
        worker.terminate()
        worker.communicate(timeout=20)
        from contextkb.celery import app

        with app.connection_for_write() as connection, contextlib.suppress(Exception):
            connection.default_channel.queue_purge(queue)


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_sync_pulls_every_linked_space_and_a_gone_remote_fails_alone(
    client, tmp_path, sync_worker
):
    spaces = {}
    for slug, title in (("billing", "Use Stripe"), ("gone", "Use SOAP"), ("search", "Use BM25")):
        space = SpaceFactory(name=slug.capitalize(), slug=slug)
        admin = MembershipFactory(
            space=space, role=Membership.Role.ADMIN, user__username=f"{slug}-admin"
        ).user
        bare = _remote(tmp_path, slug, title)
        sync.repo_link_save(space=space, actor=admin, remote_url=f"file://{bare}")
        spaces[slug] = (space, admin, bare)
    shutil.rmtree(spaces["gone"][2])  # the middle one's remote disappears

    sync_all_repos()  # what celery beat runs

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if RepoLink.objects.filter(last_sync_at__isnull=True).count() == 0:
            break
        time.sleep(0.5)
    links = {link.space.slug: link for link in RepoLink.objects.select_related("space")}
    assert all(link.last_sync_at for link in links.values()), {
        slug: link.last_message for slug, link in links.items()
    }

    for slug, title in (("billing", "Use Stripe"), ("search", "Use BM25")):
        assert links[slug].last_result == "ok", links[slug].last_message
        record = Record.objects.get(space=spaces[slug][0], number=1)
        assert record.title == f"1. {title}" and record.status == "accepted"
    gone = links["gone"]
    assert gone.last_result == "failed" and gone.last_direction == "pull"
    assert f"The repository file://{spaces['gone'][2]} could not be read" in gone.last_message
    assert not Record.objects.filter(space=spaces["gone"][0]).exists()

    # The failure is on that space's sync page, for its people to see.
    client.force_login(spaces["gone"][1], backend=MODEL_BACKEND)
    page = client.get("/s/gone/sync/").content.decode()
    assert "<strong>Failed</strong>" in page and "could not be read" in page
    client.force_login(spaces["billing"][1], backend=MODEL_BACKEND)
    page = client.get("/s/billing/sync/").content.decode()
    assert "<strong>In sync</strong>" in page and "Nothing to push" in page

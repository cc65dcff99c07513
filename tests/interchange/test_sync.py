"""Two-way sync with a real git remote: a bare repository over file://, and `git daemon` for a
network remote. No mocks of git."""

import io
import socket
import subprocess
import time

import pytest
from django.core.management import CommandError, call_command

from apps.core import sealing
from apps.core.errors import Forbidden, InvalidInput
from apps.interchange import sync
from apps.interchange.models import RepoLink
from apps.records import services as record_services
from apps.records.models import Link, Record
from tests.live import free_port

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
GIT = "/usr/bin/git"


def git(cwd, *args, author="Ann <ann@example.com>"):
    name, email = author[:-1].split(" <")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    result = subprocess.run(
        [GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


@pytest.fixture(autouse=True)
def _file_remotes(settings):
    settings.CONTEXTKB_SYNC_ALLOW_FILE_REMOTES = True


@pytest.fixture
def remote(tmp_path):
    """A bare repository whose `main` holds docs/adr with two ADRs, and a working clone."""
    bare = tmp_path / "kb.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    adr = work / "docs" / "adr"
    adr.mkdir(parents=True)
    (adr / "0001-use-postgres.md").write_text(
        "# 1. Use Postgres\n\nDate: 2026-11-01\n\n## Status\n\nAccepted\n\n## Decision\n\nPostgres.\n"
    )
    (adr / "0002-use-redis.md").write_text(
        "# 2. Use Redis\n\nDate: 2026-11-02\n\n## Status\n\nProposed\n\n## Decision\n\nRedis.\n"
    )
    git(work, "checkout", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "Two ADRs")
    git(work, "push", "-q", "origin", "main")
    return bare, work


def _link(space, admin_user, url, **kwargs):
    return sync.repo_link_save(space=space, actor=admin_user, remote_url=url, **kwargs)


@pytest.fixture
def linked(space, admin_user, remote):
    bare, work = remote
    return _link(space, admin_user, f"file://{bare}"), bare, work


def _push_from(work, files: dict[str, str], message="Change", force=False):
    for path, text in files.items():
        (work / path).write_text(text)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", *(["--force"] if force else []), "origin", "HEAD:main")


@pytest.mark.django_db
def test_a_pull_brings_the_branch_folder_in_and_later_changes_flow_in(space, linked):
    link, _bare, work = linked
    outcome = sync.repo_pull(link=link)
    assert outcome.result == "ok", outcome.message
    records = {r.number: r for r in Record.objects.filter(space=space)}
    assert (records[1].title, records[1].status) == ("1. Use Postgres", "accepted")
    assert records[2].status == "proposed"

    _push_from(
        work,
        {
            "docs/adr/0002-use-redis.md": "# 2. Use Redis\n\nDate: 2026-11-02\n\n## Status\n\n"
            "Accepted\n\n## Decision\n\nRedis.\n"
        },
    )
    outcome = sync.repo_pull(link=link)
    assert outcome.result == "ok" and "1 updated" in outcome.message
    assert Record.objects.get(space=space, number=2).status == "accepted"
    link.refresh_from_db()
    assert link.last_pulled_commit == git(work, "rev-parse", "HEAD").strip()
    assert link.last_sync_at is not None and link.last_direction == "pull"


@pytest.mark.django_db
def test_app_edits_are_pushed_as_one_commit_each_with_their_author_on_the_push_branch(
    space, owner, linked, tmp_path
):
    link, bare, work = linked
    sync.repo_pull(link=link)
    assert sync.repo_push(link=link).message.startswith("Nothing to push")

    dec1 = Record.objects.get(space=space, number=1)
    record_services.record_update(
        record=dec1,
        actor=owner,
        expected_version=dec1.version,
        changes={"body": dec1.body + "\nAlso for queues.\n"},
    )
    new = record_services.record_create(
        space=space, kind="decision", title="Use S3 for files", body="S3.\n", actor=owner
    )
    outcome = sync.repo_push(link=link)
    assert outcome.result == "ok", outcome.message
    assert "Pushed 2 commits to contextkb/edits" in outcome.message

    log = git(bare, "log", "--format=%an <%ae>|%s", "contextkb/edits", "-n", "3")
    lines = log.strip().splitlines()
    assert (
        lines[0] == f"{owner.get_full_name() or owner.username} <{owner.email}>|"
        f"{new.key}: Created \u201cUse S3 for files\u201d"
    )
    assert lines[1].endswith("|DEC-1: Edited \u201c1. Use Postgres\u201d")
    assert lines[2].endswith("|Two ADRs")  # based on main, ready for a pull request
    # main is untouched.
    assert git(bare, "log", "--format=%s", "main").strip() == "Two ADRs"

    # The files are MADR with front matter, numbered in the folder's own scheme.
    names = git(bare, "ls-tree", "--name-only", "contextkb/edits", "docs/adr/").split()
    assert f"docs/adr/{new.number:04d}-use-s3-for-files.md" in names
    text = git(bare, "show", "contextkb/edits:docs/adr/0001-use-postgres.md")
    assert text.startswith("---\nkey: DEC-1\n") and "# 1. Use Postgres\n\n" in text
    assert text.endswith("Also for queues.\n")

    # Pushing again sends nothing: the branch holds every edit.
    assert "Nothing to push" in sync.repo_push(link=link).message
    # Merged into main and pulled: nothing changes, nothing waits, nothing to push.
    git(work, "fetch", "-q", "origin")
    git(work, "merge", "-q", "--ff-only", "origin/contextkb/edits")
    git(work, "push", "-q", "origin", "HEAD:main")
    pulled = sync.repo_pull(link=link)
    assert pulled.result == "ok" and pulled.waiting == [], pulled.message
    assert Record.objects.get(pk=dec1.pk).body.endswith("Also for queues.\n")
    assert "Nothing to push" in sync.repo_push(link=link).message


@pytest.mark.django_db
def test_a_file_changed_on_both_sides_waits_for_a_person_and_is_never_overwritten(
    client, space, owner, linked
):
    link, bare, work = linked
    sync.repo_pull(link=link)
    dec2 = Record.objects.get(space=space, number=2)
    record_services.record_update(
        record=dec2,
        actor=owner,
        expected_version=dec2.version,
        changes={"body": "Redis, edited in the app.\n"},
    )
    theirs = "# 2. Use Redis\n\nDate: 2026-11-02\n\n## Status\n\nProposed\n\nValkey instead.\n"
    _push_from(work, {"docs/adr/0002-use-redis.md": theirs})

    outcome = sync.repo_pull(link=link)
    assert outcome.result == "waiting"
    assert [(w["path"], w["key"]) for w in outcome.waiting] == [
        ("docs/adr/0002-use-redis.md", "DEC-2")
    ]
    assert "neither side was overwritten" in outcome.waiting[0]["message"]
    assert Record.objects.get(pk=dec2.pk).body == "Redis, edited in the app.\n"
    # The push does not write over the file waiting for a person.
    pushed = sync.repo_push(link=link)
    assert "DEC-2" not in pushed.message
    assert git(bare, "show", "main:docs/adr/0002-use-redis.md") == theirs

    client.force_login(owner, backend=MODEL_BACKEND)
    page = client.get(f"/s/{space.slug}/sync/").content.decode()
    assert "docs/adr/0002-use-redis.md" in page and "Files waiting for a person" in page
    assert "Last sync" in page

    # Brought together in the file: no longer waiting.
    _push_from(
        work,
        {"docs/adr/0002-use-redis.md": "# 2. Use Redis\n\nRedis, edited in the app.\n"},
    )
    assert sync.repo_pull(link=link).waiting == []


@pytest.mark.django_db
def test_a_rejected_push_a_gone_remote_and_a_force_push_get_clear_messages(
    space, owner, linked, tmp_path
):
    link, bare, work = linked
    sync.repo_pull(link=link)
    first_head = link.last_pulled_commit or RepoLink.objects.get(pk=link.pk).last_pulled_commit

    # Force-push main to a history without the commit pulled last.
    git(work, "checkout", "-q", "--orphan", "rewritten")
    (work / "docs/adr/0001-use-postgres.md").write_text(
        "# 1. Use Postgres\n\nDate: 2026-11-01\n\n## Status\n\nAccepted\n\n## Decision\n\nPostgres.\n"
    )
    _push_from(work, {}, message="Rewritten history", force=True)
    outcome = sync.repo_pull(link=link)
    assert "was force-pushed" in outcome.message and first_head[:12] in outcome.message
    assert Record.objects.filter(space=space).count() == 2  # nothing lost

    # A hook that refuses every push: the push fails, nothing is lost, it is tried again.
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    record = Record.objects.get(space=space, number=1)
    record_services.record_update(
        record=record, actor=owner, expected_version=record.version, changes={"summary": "PG."}
    )
    pushed = sync.repo_push(link=link)
    assert pushed.result == "failed" and "was rejected" in pushed.message
    assert "Nothing was lost" in pushed.message
    hook.unlink()
    assert "DEC-1" in sync.repo_push(link=link).message

    # A branch that is not there.
    RepoLink.objects.filter(pk=link.pk).update(branch="release")
    missing = sync.repo_pull(link=link)
    assert missing.result == "failed"
    assert missing.message == f"The branch 'release' does not exist in file://{bare}."
    RepoLink.objects.filter(pk=link.pk).update(branch="main")

    # The remote is gone.
    subprocess.run(["/bin/rm", "-rf", str(bare)], check=True)
    gone = sync.repo_pull(link=link)
    assert gone.result == "failed" and "could not be read" in gone.message
    assert Record.objects.filter(space=space).count() == 2


@pytest.mark.django_db
def test_malformed_front_matter_is_reported_on_the_sync_and_the_rest_imports(space, linked):
    link, _bare, work = linked
    _push_from(work, {"docs/adr/0003-broken.md": "---\nstatus: [unclosed\n---\n# 3. Broken\n"})
    outcome = sync.repo_pull(link=link)
    assert outcome.result == "waiting"
    assert "0003-broken.md: front matter is not valid YAML" in outcome.message
    assert Record.objects.filter(space=space).count() == 2


@pytest.mark.django_db
def test_the_credential_is_stored_encrypted_and_never_shown_or_logged(
    client, space, admin_user, caplog
):
    link = _link(
        space,
        admin_user,
        "http://127.0.0.1:9/acme/kb.git",
        username="oauth2",
        credential="glpat-s3cr3t-t0ken",
    )
    assert "glpat-s3cr3t-t0ken" not in link.credential_sealed
    assert sealing.unseal(link.credential_sealed) == "glpat-s3cr3t-t0ken"
    outcome = sync.repo_pull(link=link)
    assert outcome.result == "failed"
    client.force_login(admin_user, backend=MODEL_BACKEND)
    page = client.get(f"/s/{space.slug}/sync/").content.decode()
    api = client.get(f"/api/v1/sync/{space.slug}/").content.decode()
    for text in (outcome.message, page, api, caplog.text):
        assert "s3cr3t" not in text
    assert "A credential is stored" in page
    # Saving without a credential keeps it; the address may not carry one.
    _link(space, admin_user, "http://127.0.0.1:9/acme/kb.git", username="oauth2")
    assert RepoLink.objects.get(pk=link.pk).has_credential
    with pytest.raises(InvalidInput, match="token"):
        _link(space, admin_user, "https://oauth2:abc@gitlab.example.com/acme/kb.git")


def test_the_django_admin_shows_a_repo_link_read_only_and_never_its_credential(
    client, space, admin_user, django_user_model
):
    link = _link(
        space, admin_user, "http://127.0.0.1:9/acme/kb.git", credential="glpat-s3cr3t-t0ken"
    )
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff, backend=MODEL_BACKEND)
    base = "/admin/interchange/repolink/"

    page = client.get(f"{base}{link.pk}/change/")

    assert page.status_code == 200 and "acme/kb.git" in page.content.decode()
    assert link.credential_sealed not in page.content.decode()
    assert b'name="_save"' not in page.content
    assert client.get(f"{base}add/").status_code == 403
    assert client.get("/admin/interchange/sourceid/add/").status_code == 403
    assert client.get("/admin/interchange/importbaseline/add/").status_code == 403


@pytest.mark.django_db
def test_only_admins_link_and_editors_sync(client, space, owner, viewer, admin_user, remote):
    bare, _ = remote
    with pytest.raises(Forbidden):
        _link(space, owner, f"file://{bare}")
    link = _link(space, admin_user, f"file://{bare}")
    client.force_login(viewer, backend=MODEL_BACKEND)
    assert client.post(f"/s/{space.slug}/sync/", {"action": "pull"}).status_code == 403
    client.force_login(owner, backend=MODEL_BACKEND)
    response = client.post(f"/s/{space.slug}/sync/", {"action": "pull"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.last_result == "ok" and Record.objects.filter(space=space).count() == 2


@pytest.mark.django_db
def test_the_command_and_the_api_run_and_report_a_sync(client, space, owner, linked):
    _link_row, _, _ = linked
    out = io.StringIO()
    call_command("sync_repo", space=space.slug, stdout=out)
    assert f"{space.slug}: [ok] Pulled" in out.getvalue()
    with pytest.raises(CommandError, match="not linked"):
        call_command("sync_repo", space="nope", stdout=io.StringIO())

    client.force_login(owner, backend=MODEL_BACKEND)
    state = client.get(f"/api/v1/sync/{space.slug}/").json()
    assert state["last_result"] == "ok" and state["waiting"] == []
    assert state["has_credential"] is False and "credential" not in state
    ran = client.post(f"/api/v1/sync/{space.slug}/pull/")
    assert ran.status_code == 200 and ran.json()["result"] == "ok"
    both = client.post(f"/api/v1/sync/{space.slug}/sync/").json()
    assert both["result"] == "ok" and "Pulled" in both["message"]
    assert "Nothing to push" in both["message"]


@pytest.mark.django_db
def test_pull_and_push_over_the_network_with_git_daemon(space, owner, admin_user, remote):
    bare, _ = remote
    port = free_port()
    daemon = subprocess.Popen(
        [
            GIT,
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={bare.parent}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(bare.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        link = _link(space, admin_user, f"git://127.0.0.1:{port}/kb.git")
        assert sync.repo_pull(link=link).result == "ok"
        assert Record.objects.filter(space=space).count() == 2
        record = Record.objects.get(space=space, number=2)
        record_services.record_update(
            record=record, actor=owner, expected_version=record.version, changes={"title": "Valkey"}
        )
        pushed = sync.repo_push(link=link)
        assert pushed.result == "ok" and "DEC-2" in pushed.message, pushed.message
        assert "title: Valkey" in git(bare, "show", "contextkb/edits:docs/adr/0002-use-redis.md")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    assert not Link.objects.filter(source__space=space).exists()


@pytest.mark.django_db
def test_a_push_webhook_for_the_linked_branch_pulls_the_space(
    client, settings, space, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    import hashlib
    import hmac
    import json

    from apps.interchange.tasks import sync_repo

    settings.DRIFT_WEBHOOK_SECRET = "hook-secret"
    bare = tmp_path / "acme" / "kb.git"
    bare.parent.mkdir()
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "docs/adr").mkdir(parents=True)
    git(work, "checkout", "-q", "-b", "main")
    _push_from(work, {"docs/adr/0001-a.md": "# 1. A\n\n## Status\n\nAccepted\n"})
    link = _link(space, admin_user, f"file://{bare}")

    def deliver(ref):
        body = json.dumps(
            {"ref": ref, "after": "a" * 40, "repository": {"full_name": "acme/kb"}, "commits": []}
        ).encode()
        signature = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = client.post(
                "/api/v1/drift/github/",
                body,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=signature,
                HTTP_X_GITHUB_EVENT="push",
            )
        assert response.status_code in (200, 201), response.content
        return queued

    assert len(deliver("refs/heads/other")) == 0  # another branch: nothing to pull
    assert len(deliver("refs/heads/main")) == 1
    sync_repo(link.pk)  # what the worker does with the queued task
    assert Record.objects.get(space=space).title == "1. A"


@pytest.mark.django_db
def test_a_second_sync_of_the_same_space_waits_its_turn(space, linked):
    from django.db import connections

    link, _, _ = linked
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [sync.git.LOCK_BASE + link.pk])
        outcome = sync.repo_pull(link=link)
        assert outcome.result == "failed" and "already running" in outcome.message
        assert not Record.objects.filter(space=space).exists()
    finally:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [sync.git.LOCK_BASE + link.pk])
        other.close()
    again = sync.repo_pull(link=link)
    assert again.result == "ok", again.message


@pytest.mark.django_db
def test_admins_set_the_link_over_the_api_and_the_token_is_never_returned(
    client, space, owner, admin_user, remote
):
    bare, _ = remote
    body = {
        "remote_url": f"file://{bare}",
        "branch": "main",
        "folder": "docs/adr",
        "username": "oauth2",
        "credential": "tok-SECRET-123",
    }
    client.force_login(owner, backend=MODEL_BACKEND)
    refused = client.put(f"/api/v1/sync/{space.slug}/", body, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    client.force_login(admin_user, backend=MODEL_BACKEND)
    saved = client.put(f"/api/v1/sync/{space.slug}/", body, content_type="application/json")
    assert saved.status_code == 200 and saved.json()["has_credential"] is True
    assert "tok-SECRET-123" not in saved.content.decode()
    bad = client.put(
        f"/api/v1/sync/{space.slug}/",
        {**body, "folder": "../etc"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "folder" in bad.json()["error"]["details"]
    assert RepoLink.objects.get(space=space).folder == "docs/adr"


class _GitHttp:
    """`git http-backend` behind a tiny HTTP server that wants a Basic credential, like GitHub
    or GitLab over HTTPS (real git on both ends; only TLS is left out)."""

    def __init__(self, root, user, token):
        import base64
        import http.server
        import threading

        expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                seen.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": "/usr/bin:/bin",
                    "GIT_PROJECT_ROOT": str(root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(length),
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1",
                }
                out = subprocess.run(
                    ["/usr/lib/git-core/git-http-backend"],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(": ")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db
def test_an_https_style_remote_gets_the_stored_token_and_a_wrong_one_is_reported(
    space, owner, admin_user, remote, caplog
):
    bare, _ = remote
    git(bare, "config", "http.receivepack", "true")
    server = _GitHttp(bare.parent, "oauth2", "glpat-right-token")
    try:
        url = f"http://127.0.0.1:{server.port}/kb.git"
        link = _link(space, admin_user, url, username="oauth2", credential="glpat-wrong-token")
        refused = sync.repo_pull(link=link)
        assert refused.result == "failed" and "could not be read" in refused.message
        assert "glpat-wrong-token" not in refused.message + caplog.text

        link = _link(space, admin_user, url, username="oauth2", credential="glpat-right-token")
        assert sync.repo_pull(link=link).result == "ok"
        record = Record.objects.get(space=space, number=1)
        record_services.record_update(
            record=record, actor=owner, expected_version=record.version, changes={"summary": "PG"}
        )
        pushed = sync.repo_push(link=link)
        assert pushed.result == "ok" and "DEC-1" in pushed.message, pushed.message
        assert "summary: PG" in git(bare, "show", "contextkb/edits:docs/adr/0001-use-postgres.md")
    finally:
        server.close()
    assert server.seen and "glpat-right-token" not in caplog.text


@pytest.mark.django_db
def test_a_link_made_in_the_app_is_pushed_with_every_editor_credited(
    space, owner, teammate, linked
):
    link, bare, _ = linked
    sync.repo_pull(link=link)
    dec1 = Record.objects.get(space=space, number=1)
    dec2 = Record.objects.get(space=space, number=2)
    record_services.record_update(
        record=dec1, actor=teammate, expected_version=dec1.version, changes={"summary": "PG."}
    )
    # A link adds a revision to its source without bumping its version: still a change to push.
    record_services.record_link(
        source=Record.objects.get(pk=dec1.pk), target=dec2, type="depends_on", actor=owner
    )
    pushed = sync.repo_push(link=link)
    assert pushed.result == "ok" and "DEC-1" in pushed.message, pushed.message
    text = git(bare, "show", "contextkb/edits:docs/adr/0001-use-postgres.md")
    assert "depends_on:\n  - DEC-2" in text or "depends_on: [DEC-2]" in text
    # Each change is its own commit, credited to whoever made it.
    log = git(bare, "log", "--format=%an|%s", "contextkb/edits", "-n", "2").strip().splitlines()
    assert log == [
        f"{owner.get_full_name() or owner.username}|DEC-1: Linked: depends on DEC-2",
        f"{teammate.get_full_name() or teammate.username}|DEC-1: Edited \u201c1. Use Postgres\u201d",
    ]


@pytest.mark.django_db
def test_each_app_edit_is_its_own_commit_in_order_with_its_author_note_and_content(
    space, owner, teammate, linked
):
    link, bare, _ = linked
    sync.repo_pull(link=link)
    dec2 = Record.objects.get(space=space, number=2)
    record_services.record_update(
        record=dec2,
        actor=teammate,
        expected_version=dec2.version,
        changes={"body": "Redis for the cache.\n"},
        message="Narrow Redis to caching",
    )
    dec2 = Record.objects.get(pk=dec2.pk)
    record_services.record_update(
        record=dec2,
        actor=owner,
        expected_version=dec2.version,
        changes={"body": "Redis for the cache and the queue.\n", "status": "accepted"},
        message="Queues too; accepted at the review",
    )
    pushed = sync.repo_push(link=link)
    assert pushed.result == "ok", pushed.message
    assert pushed.message.startswith("Pushed 2 commits to contextkb/edits: DEC-2.")

    log = git(bare, "log", "--reverse", "--format=%H|%an <%ae>|%s", "main..contextkb/edits")
    commits = [line.split("|") for line in log.strip().splitlines()]
    name = lambda user: user.get_full_name() or user.username  # noqa: E731
    assert [c[1:] for c in commits] == [
        [f"{name(teammate)} <{teammate.email}>", "DEC-2: Narrow Redis to caching"],
        [f"{name(owner)} <{owner.email}>", "DEC-2: Queues too; accepted at the review"],
    ]
    # Each commit holds the file as that change left it.
    first = git(bare, "show", f"{commits[0][0]}:docs/adr/0002-use-redis.md")
    second = git(bare, "show", f"{commits[1][0]}:docs/adr/0002-use-redis.md")
    assert first.endswith("Redis for the cache.\n") and "status: proposed" in first
    assert second.endswith("Redis for the cache and the queue.\n") and "status: accepted" in second
    # The committer is contextkb; the author dates follow the edits.
    dates = git(bare, "log", "--reverse", "--format=%cn|%at", "main..contextkb/edits").split()
    assert [d.split("|")[0] for d in dates] == ["contextkb", "contextkb"]
    assert int(dates[0].split("|")[1]) <= int(dates[1].split("|")[1])
    # Nothing left to push.
    assert "Nothing to push" in sync.repo_push(link=link).message

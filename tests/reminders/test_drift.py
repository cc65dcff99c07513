import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.records.models import Record, SuspectReason
from apps.reminders.models import DriftReport
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

FIXTURE = (Path(__file__).parent / "fixtures" / "github_push.json").read_bytes()
SECRET = "s3cret-for-tests"


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def anchored(space, owner):
    billing = make_record(space=space, actor=owner, anchors=["services/billing/**"])
    tools = make_record(space=space, actor=owner, kind="guardrail", anchors=["tools/*.py"])
    web = make_record(space=space, actor=owner, anchors=["web/"])
    return billing, tools, web


def _github(client, body, signature, event="push"):
    return client.post(
        "/api/v1/drift/github/",
        data=body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )


def test_github_push_webhook_marks_records_under_changed_paths_suspect(client, anchored):
    billing, tools, web = anchored
    response = _github(client, FIXTURE, _sign(FIXTURE))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["repository"] == "acme/payments"
    assert body["commit"] == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    assert body["suspect_count"] == 2
    assert body["unmatched_paths"] == ["README.md"]
    states = dict(Record.objects.values_list("key", "freshness"))
    assert states == {billing.key: "suspect", tools.key: "suspect", web.key: "unverified"}
    reason = SuspectReason.objects.get(record=billing)
    assert (
        reason.cause_url == "https://github.com/acme/payments/compare/6113728f27ae...0d1a26e67d8f"
    )
    assert reason.details["paths"] == ["services/billing/capture.py", "services/billing/retry.py"]

    # GitHub redelivers: same commit, nothing new.
    again = _github(client, FIXTURE, _sign(FIXTURE))
    assert again.status_code == 200
    assert SuspectReason.objects.count() == 2


@pytest.mark.parametrize(
    "signature",
    [_sign(FIXTURE, "wrong-secret"), "", "sha256=", _sign(FIXTURE + b" ")],
    ids=["wrong-secret", "missing", "empty", "body-changed"],
)
def test_github_webhook_with_a_bad_signature_changes_nothing(client, anchored, signature):
    response = _github(client, FIXTURE, signature)
    assert response.status_code == 403
    assert response.json()["error"]["code"]
    assert not SuspectReason.objects.exists()
    assert not DriftReport.objects.exists()


def test_github_ping_and_other_events_are_acknowledged_without_changes(client, anchored):
    assert (
        _github(
            client, b'{"zen": "Keep it simple."}', _sign(b'{"zen": "Keep it simple."}'), "ping"
        ).status_code
        == 200
    )
    assert _github(client, FIXTURE, _sign(FIXTURE), "issues").status_code == 202
    assert not DriftReport.objects.exists()


def test_webhooks_refuse_everything_when_no_secret_is_configured(client, anchored, settings):
    settings.DRIFT_WEBHOOK_SECRET = ""
    assert _github(client, FIXTURE, _sign(FIXTURE, "")).status_code == 403
    assert not SuspectReason.objects.exists()


GITLAB = (Path(__file__).parent / "fixtures" / "gitlab_push.json").read_bytes()


def _gitlab(client, body, token=SECRET, event="Push Hook"):
    return client.post(
        "/api/v1/drift/gitlab/",
        data=body,
        content_type="application/json",
        HTTP_X_GITLAB_EVENT=event,
        HTTP_X_GITLAB_TOKEN=token,
    )


@pytest.mark.parametrize("token", ["nope", "", SECRET + " "], ids=["wrong", "missing", "padded"])
def test_gitlab_push_hook_with_a_wrong_token_changes_nothing(client, anchored, token):
    response = _gitlab(client, GITLAB, token=token)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "The webhook token does not match."
    assert not SuspectReason.objects.exists() and not DriftReport.objects.exists()


def test_gitlab_push_hook_marks_records_under_changed_paths_suspect(client, anchored):
    billing, tools, web = anchored
    response = _gitlab(client, GITLAB)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["repository"], body["commit"], body["source"]) == (
        "acme/payments",
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "gitlab",
    )
    # tools/*.py matches tools/ledger_export.py; tools/legacy_export.sh matches no anchor.
    assert body["suspect_count"] == 2
    assert body["unmatched_paths"] == ["README.md", "tools/legacy_export.sh"]
    states = dict(Record.objects.values_list("key", "freshness"))
    assert states == {billing.key: "suspect", tools.key: "suspect", web.key: "unverified"}
    reason = SuspectReason.objects.get(record=billing)
    assert reason.message == (
        "Code under its anchors changed in acme/payments@da1560886d4f: "
        "services/billing/capture.py, services/billing/retry.py"
    )
    assert reason.cause_url == (
        "https://gitlab.example.com/acme/payments/-/compare/"
        "95790bf891e76fee5e1747ab589903a6a1f80f22...da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    )
    # GitLab retries a hook that timed out: the same push changes nothing the second time.
    assert _gitlab(client, GITLAB).status_code == 200
    assert SuspectReason.objects.count() == 2


def test_gitlab_tag_pushes_and_branch_deletions_are_acknowledged_without_changes(client, anchored):
    assert _gitlab(client, GITLAB, event="Tag Push Hook").status_code == 202
    deleted = json.loads(GITLAB)
    deleted.update(after="0" * 40, checkout_sha=None, commits=[])
    assert _gitlab(client, json.dumps(deleted)).status_code == 202
    assert not DriftReport.objects.exists()


HOSTILE = [
    b'{"project": "x", "commits": 5, "checkout_sha": "abc"}',
    b'{"project": {"path_with_namespace": ["a"]}, "checkout_sha": "abc"}',
    b'{"project": {"path_with_namespace": "a/b"}, "checkout_sha": {"x": 1}}',
    b'{"repository": 5, "after": []}',
    b'"just a string"',
    b"[1, 2]",
    b"not json at all",
    b"\xff\xfe",
    b'{"project": {"path_with_namespace": "a/b"}, "checkout_sha": "x;rm -rf /"}',
]


@pytest.mark.parametrize("body", HOSTILE)
def test_signed_but_malformed_webhooks_are_refused_or_ignored_never_a_500(client, anchored, body):
    for response in (_gitlab(client, body), _github(client, body, _sign(body))):
        # 400 with a message, or 202 "ignored" (e.g. no commit: GitLab's branch deletion).
        assert response.status_code in (400, 202), response.content
        if response.status_code == 400:
            assert response.json()["error"]["message"]
    assert not SuspectReason.objects.exists()
    assert not DriftReport.objects.exists()


def test_a_compare_url_that_is_not_http_is_not_kept(client, anchored):
    payload = json.loads(FIXTURE)
    payload["compare"] = "javascript:alert(document.cookie)"
    body = json.dumps(payload).encode()
    assert _github(client, body, _sign(body)).status_code == 201
    assert set(SuspectReason.objects.values_list("cause_url", flat=True)) == {""}


def test_drift_api_with_a_read_write_token(client, anchored, owner, other_space, outsider):
    billing, _, _ = anchored
    elsewhere = make_record(space=other_space, actor=outsider, anchors=["services/billing/**"])
    _, read_only = make_token(owner, scope=ApiToken.Scope.READ)
    _, read_write = make_token(owner, scope=ApiToken.Scope.READ_WRITE)
    body = {
        "repository": "acme/payments",
        "commit": "abc1234",
        "changed_paths": ["services/billing/a.py"],
    }

    assert client.post("/api/v1/drift/", body, content_type="application/json").status_code == 401
    refused = client.post(
        "/api/v1/drift/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_only}",
    )
    assert refused.status_code == 403
    bad = client.post(
        "/api/v1/drift/",
        {**body, "changed_paths": "a.py"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_write}",
    )
    assert bad.status_code == 400
    assert not SuspectReason.objects.exists()

    ok = client.post(
        "/api/v1/drift/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_write}",
    )
    assert ok.status_code == 201
    assert ok.json()["suspect_count"] == 1
    # Only records in spaces the token's user may edit: the outsider's record is untouched.
    assert Record.objects.get(pk=billing.pk).freshness == "suspect"
    assert (
        Record.objects.get(pk=elsewhere.pk).freshness == "unverified"
    )  # never verified, not flagged


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _checkout(tmp_path):
    """A git repository with two commits: the second changes billing code and adds notes."""
    repo = tmp_path / "repo"
    (repo / "services" / "billing").mkdir(parents=True)
    (repo / "services" / "billing" / "capture.py").write_text("v1\n")
    (repo / "other.txt").write_text("x\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b.c", "-c", "user.name=A", "commit", "-qm", "one")
    (repo / "services" / "billing" / "capture.py").write_text("v2\n")
    (repo / "notes.md").write_text("new\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b.c", "-c", "user.name=A", "commit", "-qm", "two")
    return repo


def test_drift_command_reads_git_diff_in_a_checkout(tmp_path, anchored, capsys):
    billing, _tools, _web = anchored
    repo = _checkout(tmp_path)

    call_command("drift", "--repo", "acme/payments", "--since", "HEAD~1", "--path", str(repo))

    out = capsys.readouterr().out
    assert "2 changed path(s)" in out and "1 record(s) marked suspect" in out
    assert Record.objects.get(pk=billing.pk).freshness == "suspect"
    assert DriftReport.objects.get().unmatched_paths == ["notes.md"]
    with pytest.raises(CommandError, match="failed"):
        call_command(
            "drift", "--repo", "acme/payments", "--since", "nonexistent", "--path", str(repo)
        )


def test_drift_command_dry_run_changes_nothing_and_lists_what_it_would_mark(
    tmp_path, anchored, capsys
):
    billing, _tools, _web = anchored
    repo = _checkout(tmp_path)

    call_command(
        "drift", "--repo", "acme/payments", "--since", "HEAD~1", "--path", str(repo), "--dry-run"
    )

    out = capsys.readouterr().out
    assert "2 changed path(s)" in out and "(dry run)" in out
    assert f"1 record(s) would be marked suspect:\n  payments/{billing.key}" in out
    assert not DriftReport.objects.exists()
    assert (
        Record.objects.get(pk=billing.pk).freshness == "unverified"
    )  # never verified, not flagged


def test_the_drift_command_dry_run_names_exactly_the_records_the_real_run_marks(
    tmp_path, anchored, space, owner, capsys
):
    """Twins: the dry run and the real run of one range agree record for record (the dry run
    once had a matcher of its own)."""
    readme = make_record(space=space, actor=owner, anchors=["README.md"])
    docs = make_record(space=space, actor=owner, anchors=["docs/*.md"])
    archived = make_record(space=space, actor=owner, anchors=["web/"])
    Record.objects.filter(pk=archived.pk).update(archived_at=timezone.now())
    repo = _checkout(tmp_path)
    for name in ("tools/lint.py", "tools/deep/nested.py", "web/static/app.js", "README.md"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("x\n")
    (repo / "docs" / "deep").mkdir(parents=True)
    (repo / "docs" / "deep" / "below.md").write_text("x\n")  # deeper than docs/*.md reaches
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b.c", "-c", "user.name=A", "commit", "-qm", "three")
    command = ["drift", "--repo", "acme/payments", "--since", "HEAD~2", "--path", str(repo)]

    call_command(*command, "--dry-run")
    out = capsys.readouterr().out
    listed = out.split("would be marked suspect:\n", 1)[1].splitlines()
    would = {line.split()[0] for line in listed}
    call_command(*command)
    marked = {
        f"{r.record.space.slug}/{r.record.key}"
        for r in SuspectReason.objects.filter(cause=SuspectReason.Cause.CODE_CHANGED)
    }

    billing, tools, web = anchored
    assert would == marked == {f"{space.slug}/{r.key}" for r in (billing, tools, web, readme)}
    assert docs.key not in out and archived.key not in out


def test_drift_command_reports_odd_file_names_as_git_stores_them(tmp_path, space, owner):
    record = make_record(space=space, actor=owner, anchors=["docs/**"])
    repo = _checkout(tmp_path)
    (repo / "docs").mkdir()
    (repo / "docs" / "Entscheidung über Zahlungen.md").write_text("x\n")
    (repo / "docs" / 'a "quoted" name.md').write_text("x\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b.c", "-c", "user.name=A", "commit", "-qm", "three")

    call_command("drift", "--repo", "acme/payments", "--since", "HEAD~1", "--path", str(repo))

    report = DriftReport.objects.get()
    assert sorted(report.changed_paths) == [
        "docs/Entscheidung über Zahlungen.md",
        'docs/a "quoted" name.md',
    ]
    assert Record.objects.get(pk=record.pk).freshness == "suspect"


def test_drift_command_outside_a_checkout_says_so(tmp_path, anchored):
    with pytest.raises(CommandError, match="is not inside a git checkout"):
        call_command(
            "drift", "--repo", "acme/payments", "--since", "HEAD~1", "--path", str(tmp_path)
        )
    with pytest.raises(CommandError, match="Not a revision"):
        call_command("drift", "--repo", "acme/payments", "--since=--output=/tmp/x")
    assert not DriftReport.objects.exists()


def test_a_token_scoped_report_does_not_stop_the_webhook_reaching_other_spaces(
    client, anchored, owner, other_space, outsider
):
    """A commit reported first by a token for one space, then by the organisation's webhook:
    the webhook still marks records in every other space, and none twice."""
    billing, _, _ = anchored
    elsewhere = make_record(space=other_space, actor=outsider, anchors=["services/billing/**"])
    _, read_write = make_token(owner, scope=ApiToken.Scope.READ_WRITE)
    first = client.post(
        "/api/v1/drift/",
        {
            "repository": "acme/payments",
            "commit": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "changed_paths": ["services/billing/api.py"],
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_write}",
    )
    assert first.status_code == 201
    assert (
        Record.objects.get(pk=elsewhere.pk).freshness == "unverified"
    )  # never verified, not flagged

    second = _github(client, FIXTURE, _sign(FIXTURE))  # the same repository and commit
    assert second.status_code == 201, second.content
    assert Record.objects.get(pk=elsewhere.pk).freshness == "suspect"
    assert SuspectReason.objects.filter(record=billing).count() == 1
    assert DriftReport.objects.count() == 1
    # Delivered again: nothing new anywhere.
    assert _github(client, FIXTURE, _sign(FIXTURE)).status_code == 200
    assert SuspectReason.objects.filter(record=elsewhere).count() == 1

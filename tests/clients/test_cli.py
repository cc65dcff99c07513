"""The `contextkb` command-line client (clients/python), run as a real subprocess against a
live test server, in a real git repository."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.accounts.models import ApiToken
from tests.factories import make_billing_guardrail, make_stale_reports_decision, make_token

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SRC = ROOT / "clients" / "python" / "src"


def run_cli(*args, url=None, token=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTEXTKB_", "DJANGO_"))}
    env["PYTHONPATH"] = str(CLIENT_SRC)
    if url:
        env["CONTEXTKB_URL"] = url
    if token:
        env["CONTEXTKB_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "contextkb_cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def git(cwd, *args):
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )


def commit_files(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_files(
        repo,
        {"README.md": "shop\n", "services/billing/api.py": "x = 1\n", "reports/daily.py": "r\n"},
        "start",
    )
    return repo


@pytest.fixture
def kb(transactional_db, space, owner):
    guard = make_billing_guardrail(space=space, owner=owner)
    stale = make_stale_reports_decision(space=space, owner=owner)
    return {
        "guard": guard,
        "stale": stale,
        "read": make_token(owner, scope=ApiToken.Scope.READ)[1],
        "rw": make_token(owner, scope=ApiToken.Scope.READ_WRITE)[1],
    }


def test_the_client_imports_no_django():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, contextkb_cli.cli; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'apps')]",
        ],
        env={**os.environ, "PYTHONPATH": str(CLIENT_SRC)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    help_text = run_cli("check", "--help")
    assert help_text.returncode == 0
    assert "--fail-on" in help_text.stdout and "exit codes" in help_text.stdout


def test_check_guardrail_stale_and_unanchored_changes(live_server, kb, repo):
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(
        repo,
        {
            "services/billing/api.py": "x = 2\ny = 3\n",
            "reports/daily.py": "r2\n",
            "tools/lint.sh": "echo\n",
        },
        "change billing, reports and tools",
    )
    done = run_cli(
        "check",
        "--base",
        "main",
        "--head",
        "feature",
        url=live_server.url,
        token=kb["read"],
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "review level **deep**" in out
    assert f"[{kb['guard'].key}](" in out and "Never log card numbers" in out
    assert f"{kb['stale'].key} (Reports are built nightly) is stale" in out
    assert "#### Verify first" in out and "#### Whom to ask" in out
    assert "- `tools/lint.sh`" in out  # unanchored
    assert "`services/billing/api.py`" in out
    assert "Comparing main...feature" in done.stderr and "Comparing" not in out

    fail = run_cli(
        "check",
        "--base",
        "main",
        "--head",
        "feature",
        "--fail-on",
        "guardrail",
        "--json",
        url=live_server.url,
        token=kb["read"],
        cwd=repo,
    )
    assert fail.returncode == 1
    import json

    body = json.loads(fail.stdout)
    assert body["level"] == "deep" and body["unanchored_paths"] == ["tools/lint.sh"]


def test_check_unanchored_only_is_light(live_server, kb, repo):
    git(repo, "checkout", "-q", "-b", "docs")
    commit_files(repo, {"docs/guide.md": "hello\n"}, "docs")
    done = run_cli(
        "check",
        "--base",
        "main",
        "--head",
        "docs",
        "--fail-on",
        "deep",
        url=live_server.url,
        token=kb["read"],
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    assert "review level **light**" in done.stdout and "- `docs/guide.md`" in done.stdout

    same = run_cli(
        "check", "--base", "docs", "--head", "docs", url=live_server.url, token=kb["read"], cwd=repo
    )
    assert same.returncode == 0, same.stderr
    assert "review level **light**" in same.stdout and "no path changed" in same.stdout


def test_check_bad_input_gives_one_line_and_the_documented_code(live_server, kb, repo, tmp_path):
    def one_line(done, code, text):
        assert done.returncode == code, (done.returncode, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("contextkb: error:") and text in last
        assert done.stdout == ""

    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"services/billing/api.py": "x = 5\n"}, "billing")
    args = ("check", "--base", "main", "--head", "feature")
    one_line(run_cli(*args, url=live_server.url, cwd=repo), 3, "CONTEXTKB_TOKEN")
    one_line(run_cli(*args, token=kb["read"], cwd=repo), 3, "CONTEXTKB_URL")
    one_line(run_cli(*args, url="http://127.0.0.1:9", token="x", cwd=repo), 4, "cannot reach")
    one_line(run_cli(*args, url=live_server.url, token="ckb_wrong", cwd=repo), 5, "refused")
    plain = tmp_path / "plain"
    plain.mkdir()
    one_line(run_cli(*args, url=live_server.url, token=kb["read"], cwd=plain), 6, "not a git")
    one_line(
        run_cli("check", "--base", "nope", url=live_server.url, token=kb["read"], cwd=repo),
        6,
        "unknown git ref 'nope'",
    )
    one_line(run_cli("check", cwd=repo), 2, "--base")


def test_drift_and_context(live_server, kb, repo):
    commit_files(repo, {"services/billing/api.py": "x = 9\n"}, "billing again")
    drift = run_cli(
        "drift", "--repository", "acme/shop", url=live_server.url, token=kb["rw"], cwd=repo
    )
    assert drift.returncode == 0, drift.stderr
    assert "acme/shop@" in drift.stdout and "1 record(s) marked suspect" in drift.stdout
    kb["guard"].refresh_from_db()
    assert kb["guard"].freshness == "suspect"

    read_only = run_cli(
        "drift", "--repository", "acme/shop", url=live_server.url, token=kb["read"], cwd=repo
    )
    assert read_only.returncode == 5 and "read-only" in read_only.stderr

    context = run_cli(
        "context",
        "card numbers",
        "--paths",
        "services/billing/api.py",
        url=live_server.url,
        token=kb["read"],
    )
    assert context.returncode == 0, context.stderr
    assert "Never log card numbers" in context.stdout

"""`contextkb check --post github|gitlab`: the comment goes onto the pull request through the
platform's REST API. GitHub and GitLab cannot run here, so a small local HTTP server speaks the
three endpoints used (list, create, update) and records every request; contextkb itself is the
live test server, and the client runs as a subprocess in a real git repository."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clients.test_cli import commit_files, git, kb, repo, run_cli  # noqa: F401

MARKER = "<!-- contextkb-check:"


class FakeForge:
    """GitHub's issue comments or GitLab's merge-request notes, in memory."""

    def __init__(self, flavour: str, token_header: str, token: str):
        self.flavour = flavour
        self.token_header = token_header
        self.token = token
        self.comments: list[dict] = []
        self.requests: list[dict] = []
        self.per_page = 2  # small pages, so the client must follow them
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                forge.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if self.headers.get(forge.token_header) != forge.token:
                    return self._reply(401, {"message": "Bad credentials"})
                status, answer, headers = forge.route(self.command, url, body)
                self._reply(status, answer, headers)

            do_GET = do_POST = do_PATCH = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, method, url, body):
        if self.flavour == "github":
            listing = re.fullmatch(r"/api/repos/acme/shop/issues/7/comments", url.path)
            one = re.fullmatch(r"/api/repos/acme/shop/issues/comments/(\d+)", url.path)
            update = "PATCH"
        else:
            listing = re.fullmatch(r"/api/v4/projects/42/merge_requests/7/notes", url.path)
            one = re.fullmatch(r"/api/v4/projects/42/merge_requests/7/notes/(\d+)", url.path)
            update = "PUT"
        if listing and method == "GET":
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            start = (page - 1) * self.per_page
            items = self.comments[start : start + self.per_page]
            headers = []
            if start + self.per_page < len(self.comments):
                headers.append(("Link", f'<{self.url}{url.path}?page={page + 1}>; rel="next"'))
            return 200, items, headers
        if listing and method == "POST":
            comment = {"id": 1000 + len(self.comments), "body": body["body"]}
            comment["html_url"] = f"https://forge.example/acme/shop/pull/7#c{comment['id']}"
            self.comments.append(comment)
            return 201, comment, []
        if one and method == update:
            [comment] = [c for c in self.comments if c["id"] == int(one.group(1))]
            comment["body"] = body["body"]
            return 200, comment, []
        return 404, {"message": "Not Found"}, []

    def writes(self):
        return [r for r in self.requests if r["method"] != "GET"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feature(repo):  # noqa: F811
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"services/billing/api.py": "x = 2\n"}, "billing")
    return repo


def _check(feature, live_server, kb, extra_env, *args):  # noqa: F811
    import os
    import subprocess
    import sys

    from tests.clients.test_cli import CLIENT_SRC

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONTEXTKB_", "DJANGO_", "GITHUB_", "CI_"))
    }
    env.update(
        {
            "PYTHONPATH": str(CLIENT_SRC),
            "CONTEXTKB_URL": live_server.url,
            "CONTEXTKB_TOKEN": kb["read"],
            **extra_env,
        }
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "contextkb_cli",
            "check",
            "--base",
            "main",
            "--head",
            "feature",
            *args,
        ],
        cwd=feature,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_github_gets_one_comment_and_a_second_run_updates_it(live_server, kb, feature, tmp_path):  # noqa: F811
    forge = FakeForge("github", "Authorization", "Bearer ghs_job")
    try:
        # Other people's comments are left alone (and fill the first page).
        forge.comments += [
            {"id": 1, "body": "LGTM"},
            {"id": 2, "body": "Please add a test"},
        ]
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7}}))
        env = {
            "GITHUB_API_URL": forge.url + "/api",
            "GITHUB_TOKEN": "ghs_job",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_EVENT_PATH": str(event),
        }
        first = _check(feature, live_server, kb, env, "--post", "github")
        assert first.returncode == 0, first.stderr
        assert "Comment created: https://forge.example/acme/shop/pull/7#c1002" in first.stderr
        [created] = forge.writes()
        assert created["method"] == "POST"
        assert created["path"] == "/api/repos/acme/shop/issues/7/comments"
        assert created["headers"]["Authorization"] == "Bearer ghs_job"
        assert created["headers"]["Accept"] == "application/vnd.github+json"
        posted = created["body"]["body"]
        assert posted.startswith(MARKER)
        assert "review level **deep**" in posted and f"[{kb['guard'].key}](" in posted
        assert posted.split("\n", 1)[1] == first.stdout  # the comment printed is the one posted

        # The second run finds its comment on the second page and edits it.
        second = _check(feature, live_server, kb, env, "--post", "github", "--fail-on", "deep")
        assert second.returncode == 1  # --fail-on still decides the exit status, after posting
        assert "Comment updated" in second.stderr
        assert [(r["method"], r["path"]) for r in forge.writes()] == [
            ("POST", "/api/repos/acme/shop/issues/7/comments"),
            ("PATCH", "/api/repos/acme/shop/issues/comments/1002"),
        ]
        assert len(forge.comments) == 3
        assert [c["body"] for c in forge.comments[:2]] == ["LGTM", "Please add a test"]
        assert forge.comments[2]["body"].startswith(MARKER)

        # A refused token and a missing setting: one line each, documented codes.
        refused = _check(
            feature, live_server, kb, {**env, "GITHUB_TOKEN": "wrong"}, "--post", "github", "-q"
        )
        assert refused.returncode == 9
        assert refused.stderr == (
            "contextkb: error: the GitHub API answered 401 to GET "
            "/api/repos/acme/shop/issues/7/comments: Bad credentials\n"
        )
        unset = {k: v for k, v in env.items() if k != "GITHUB_TOKEN"}
        missing = _check(feature, live_server, kb, unset, "--post", "github", "-q")
        assert missing.returncode == 3
        assert "no GitHub token (GITHUB_TOKEN is not set)" in missing.stderr
        no_pr = _check(
            feature, live_server, kb, {**env, "GITHUB_EVENT_PATH": ""}, "--post", "github", "-q"
        )
        assert no_pr.returncode == 3 and "no pull request number" in no_pr.stderr
        assert len(forge.comments) == 3
    finally:
        forge.close()


def test_gitlab_gets_one_note_and_a_second_run_updates_it(live_server, kb, feature):  # noqa: F811
    forge = FakeForge("gitlab", "PRIVATE-TOKEN", "glpat-kb")
    try:
        env = {
            "CI_API_V4_URL": forge.url + "/api/v4",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "7",
            "CONTEXTKB_GITLAB_TOKEN": "glpat-kb",
            "CI_JOB_TOKEN": "job-token-not-used",
        }
        forge.comments.append({"id": 5, "body": "bot: pipeline passed"})
        for _ in range(2):
            done = _check(feature, live_server, kb, env, "--post", "gitlab")
            assert done.returncode == 0, done.stderr
        assert [(r["method"], r["path"]) for r in forge.writes()] == [
            ("POST", "/api/v4/projects/42/merge_requests/7/notes"),
            ("PUT", "/api/v4/projects/42/merge_requests/7/notes/1001"),
        ]
        assert all(r["headers"]["PRIVATE-TOKEN"] == "glpat-kb" for r in forge.requests)
        assert all("JOB-TOKEN" not in r["headers"] for r in forge.requests)
        assert len(forge.comments) == 2 and forge.comments[1]["body"].startswith(MARKER)
        assert "review level **deep**" in forge.comments[1]["body"]

        # Without a project token the job token is sent, as GitLab's JOB-TOKEN header.
        forge.token_header, forge.token = "JOB-TOKEN", "job-token"
        job = {**env, "CONTEXTKB_GITLAB_TOKEN": "", "CI_JOB_TOKEN": "job-token"}
        done = _check(feature, live_server, kb, job, "--post", "gitlab")
        assert done.returncode == 0, done.stderr
        assert forge.writes()[-1]["method"] == "PUT" and len(forge.comments) == 2

        unreachable = _check(
            feature,
            live_server,
            kb,
            {**env, "CI_API_V4_URL": "http://127.0.0.1:9/api/v4"},
            "--post",
            "gitlab",
            "-q",
        )
        assert unreachable.returncode == 9
        assert unreachable.stderr.startswith("contextkb: error: cannot reach the GitLab API")
        assert unreachable.stderr.count("\n") == 1
    finally:
        forge.close()

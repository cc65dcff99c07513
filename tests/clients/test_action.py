"""The GitHub Action (action.yml) and the GitLab CI template (clients/gitlab/): their scripts,
run as a runner runs them (`bash --noprofile --norc -eo pipefail` for a composite step), with
the inputs and `${{ … }}` expressions filled in, against the live test server and the fake
GitHub/GitLab of test_comment.py."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.clients.test_cli import CLIENT_SRC, commit_files, git, kb, repo  # noqa: F401
from tests.clients.test_comment import MARKER, FakeForge

ROOT = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _resolve(value: str, context: dict) -> str:
    return EXPRESSION.sub(lambda m: _resolve(str(context[m.group(1)]), context), value)


def run_action_check(*, inputs: dict, github: dict, cwd: Path, runner_temp: Path, env: dict):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    context = {f"inputs.{k}": v.get("default", "") for k, v in action["inputs"].items()}
    context.update({f"inputs.{k}": v for k, v in inputs.items()})
    context.update(github)
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == "check"]
    assert step["shell"] == "bash"
    # The install step's result: the client in a virtualenv under RUNNER_TEMP (here a wrapper
    # around this checkout's copy, as there is no network for pip here).
    bin_dir = runner_temp / "contextkb-cli" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "contextkb"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{CLIENT_SRC}" exec "{sys.executable}" -m contextkb_cli "$@"\n'
    )
    wrapper.chmod(0o755)
    output, summary = runner_temp / "output", runner_temp / "summary"
    step_env = {k: _resolve(str(v), context) for k, v in step["env"].items()}
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONTEXTKB_", "DJANGO_", "GITHUB_"))
    }
    full_env = {
        **base,
        **env,
        **step_env,
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, output, summary


def test_the_action_posts_one_comment_sets_the_level_and_fails_on_request(
    live_server,
    kb,  # noqa: F811
    repo,  # noqa: F811
    tmp_path,
):
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"services/billing/api.py": "x = 2\n"}, "billing")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    forge = FakeForge("github", "Authorization", "Bearer ghs_job")
    try:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7}}))
        github = {
            "github.token": "ghs_job",
            "github.action_path": str(ROOT),
            "github.base_ref": "main",
            # User input: it reaches the script through the environment only.
            "github.event.pull_request.title": 'Log "$(touch pwned)" billing',
            "github.event.pull_request.body": "Adds logging.",
        }
        env = {
            "GITHUB_API_URL": forge.url + "/api",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_EVENT_PATH": str(event),
        }
        inputs = {"url": live_server.url, "token": kb["read"], "spaces": "payments, "}
        done, output, summary = run_action_check(
            inputs=inputs, github=github, cwd=repo, runner_temp=tmp_path / "t1", env=env
        )
        assert done.returncode == 0, done.stderr
        assert output.read_text() == "level=deep\n"
        assert "review level **deep**" in summary.read_text()
        assert not (repo / "pwned").exists()
        [posted] = forge.comments
        assert posted["body"].startswith(MARKER) and f"[{kb['guard'].key}](" in posted["body"]

        failing, output, _ = run_action_check(
            inputs={**inputs, "fail-on": "guardrail"},
            github=github,
            cwd=repo,
            runner_temp=tmp_path / "t2",
            env=env,
        )
        assert failing.returncode == 1
        assert output.read_text() == "level=deep\n"
        assert len(forge.comments) == 1  # updated, not added
        assert [r["method"] for r in forge.writes()] == ["POST", "PATCH"]
    finally:
        forge.close()


def test_the_gitlab_template_posts_one_note(live_server, kb, repo, tmp_path):  # noqa: F811
    template = yaml.safe_load((ROOT / "clients/gitlab/contextkb-check.gitlab-ci.yml").read_text())
    job = template["contextkb-check"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"services/billing/api.py": "x = 2\n"}, "billing")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "contextkb").write_text(
        f'#!/bin/sh\nPYTHONPATH="{CLIENT_SRC}" exec "{sys.executable}" -m contextkb_cli "$@"\n'
    )
    (bin_dir / "contextkb").chmod(0o755)
    forge = FakeForge("gitlab", "PRIVATE-TOKEN", "glpat-kb")
    try:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONTEXTKB_", "DJANGO_", "CI_", "GITLAB_"))
        }
        env.update({k: str(v) for k, v in job["variables"].items()})
        env.update(
            {
                "PATH": f"{bin_dir}:{env['PATH']}",
                "CONTEXTKB_URL": live_server.url,
                "CONTEXTKB_TOKEN": kb["read"],
                "CONTEXTKB_GITLAB_TOKEN": "glpat-kb",
                "CONTEXTKB_SPACES": "payments",
                "CI_API_V4_URL": forge.url + "/api/v4",
                "CI_PROJECT_ID": "42",
                "CI_MERGE_REQUEST_IID": "7",
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                "CI_MERGE_REQUEST_TITLE": "Log `id` billing",
                "CI_MERGE_REQUEST_DESCRIPTION": "Adds logging.",
            }
        )
        script = "\n".join(job["script"])
        for _ in range(2):
            done = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", script],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "review level **deep**" in done.stdout
        assert [r["method"] for r in forge.writes()] == ["POST", "PUT"]
        [note] = forge.comments
        assert note["body"].startswith(MARKER) and f"[{kb['guard'].key}](" in note["body"]
    finally:
        forge.close()

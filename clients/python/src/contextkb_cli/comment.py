"""Post or update ONE pull-request comment (GitHub) or merge-request note (GitLab).

The comment is found again by a hidden marker, so every run of `contextkb check --post …` on
the same pull request edits the same comment instead of adding one. Only three endpoints per
platform are used: list the comments, create one, update one.

GitHub (the REST API, with the job's `GITHUB_TOKEN`):
  GET   {GITHUB_API_URL}/repos/{owner}/{repo}/issues/{number}/comments
  POST  {GITHUB_API_URL}/repos/{owner}/{repo}/issues/{number}/comments
  PATCH {GITHUB_API_URL}/repos/{owner}/{repo}/issues/comments/{comment_id}
GitLab (API v4; `CONTEXTKB_GITLAB_TOKEN` as PRIVATE-TOKEN, else `CI_JOB_TOKEN` as JOB-TOKEN):
  GET  {CI_API_V4_URL}/projects/{id}/merge_requests/{iid}/notes
  POST {CI_API_V4_URL}/projects/{id}/merge_requests/{iid}/notes
  PUT  {CI_API_V4_URL}/projects/{id}/merge_requests/{iid}/notes/{note_id}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

import httpx

MARKER = "<!-- contextkb-check: this comment is updated by `contextkb check --post` -->"
MAX_PAGES = 50


class PostError(Exception):
    """`config` is True when the job lacks a setting (token, repository, PR number)."""

    def __init__(self, message: str, *, config: bool = False):
        super().__init__(message)
        self.message = message
        self.config = config


def _need(env: Mapping[str, str], name: str, what: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise PostError(f"cannot post the comment: {what} ({name} is not set).", config=True)
    return value


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "error"
    if isinstance(body, dict):
        for key in ("message", "error_description", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return response.reason_phrase or "error"


class _Platform:
    name = ""

    def __init__(self, client: httpx.Client):
        self.client = client

    def call(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PostError(
                f"cannot reach the {self.name} API ({exc.__class__.__name__}: {exc})".splitlines()[
                    0
                ]
            ) from None
        if response.status_code >= 400:
            raise PostError(
                f"the {self.name} API answered {response.status_code} to {method} "
                f"{httpx.URL(url).path}: {_error_text(response)}"
            )
        return response

    def pages(self, url: str, params: dict | None):
        for _ in range(MAX_PAGES):
            response = self.call("GET", url, params=params)
            try:
                items = response.json()
            except ValueError:
                raise PostError(f"the {self.name} API did not answer JSON at {url}") from None
            yield from items if isinstance(items, list) else []
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url, params = following, None  # the next link carries the query


class GitHub(_Platform):
    name = "GitHub"

    def __init__(self, env: Mapping[str, str], number: int | None, timeout: float):
        token = _need(env, "GITHUB_TOKEN", "no GitHub token")
        repository = _need(env, "GITHUB_REPOSITORY", "no repository name")
        self.api = (env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
        self.number = number or _event_number(env)
        self.repo = repository
        super().__init__(
            httpx.Client(
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "User-Agent": "contextkb-cli",
                },
                timeout=timeout,
            )
        )

    def post(self, body: str) -> tuple[str, str]:
        base = f"{self.api}/repos/{self.repo}/issues"
        for comment in self.pages(f"{base}/{self.number}/comments", {"per_page": 100}):
            if MARKER in (comment.get("body") or ""):
                done = self.call("PATCH", f"{base}/comments/{comment['id']}", json={"body": body})
                return "updated", done.json().get("html_url", "")
        done = self.call("POST", f"{base}/{self.number}/comments", json={"body": body})
        return "created", done.json().get("html_url", "")


def _event_number(env: Mapping[str, str]) -> int:
    path = (env.get("GITHUB_EVENT_PATH") or "").strip()
    event = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                event = json.load(handle)
        except (OSError, ValueError):
            event = {}
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
        if isinstance(number, int):
            return number
    raise PostError(
        "cannot post the comment: no pull request number (pass --pr, or run on a "
        "pull_request event).",
        config=True,
    )


class GitLab(_Platform):
    name = "GitLab"

    def __init__(self, env: Mapping[str, str], number: int | None, timeout: float):
        self.api = _need(env, "CI_API_V4_URL", "no GitLab API URL").rstrip("/")
        self.project = quote(_need(env, "CI_PROJECT_ID", "no project id"), safe="")
        if number is None:
            iid = _need(env, "CI_MERGE_REQUEST_IID", "no merge request (run in an MR pipeline)")
            if not iid.isdigit():
                raise PostError(f"CI_MERGE_REQUEST_IID is not a number: {iid!r}.", config=True)
            number = int(iid)
        self.number = number
        token = (env.get("CONTEXTKB_GITLAB_TOKEN") or "").strip()
        if token:
            auth = {"PRIVATE-TOKEN": token}
        else:
            auth = {"JOB-TOKEN": _need(env, "CI_JOB_TOKEN", "no GitLab token")}
        super().__init__(
            httpx.Client(headers={**auth, "User-Agent": "contextkb-cli"}, timeout=timeout)
        )

    def post(self, body: str) -> tuple[str, str]:
        notes = f"{self.api}/projects/{self.project}/merge_requests/{self.number}/notes"
        params = {"per_page": 100, "sort": "asc", "order_by": "created_at"}
        for note in self.pages(notes, params):
            if MARKER in (note.get("body") or ""):
                self.call("PUT", f"{notes}/{note['id']}", json={"body": body})
                return "updated", f"note {note['id']}"
        done = self.call("POST", notes, json={"body": body})
        return "created", f"note {done.json().get('id', '')}"


def post_comment(
    platform: str, comment: str, *, env: Mapping[str, str], number: int | None, timeout: float
) -> tuple[str, str]:
    """Create or update the one comment; returns ("created"|"updated", where)."""
    cls = {"github": GitHub, "gitlab": GitLab}[platform]
    poster = cls(env, number, timeout)
    with poster.client:
        return poster.post(f"{MARKER}\n{comment}")

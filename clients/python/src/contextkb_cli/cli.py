"""`contextkb`: the command-line client of a contextkb server.

Subcommands: `context` (a context bundle), `check` (a pull-request comment: what governs a change
and how deeply to review it; `--post github|gitlab` posts or updates it on the PR/MR), `rules`
(path-scoped rule files for agents), `drift` (tell the server which paths a commit range
changed), `mcp` (a stdio MCP server forwarding to the server's `/mcp`).

Configuration: `--url`/`CONTEXTKB_URL` and `--token`/`CONTEXTKB_TOKEN`. Results go to stdout;
progress and errors go to stderr, errors as one line starting with "contextkb: error:".

Exit codes (also in docs/ci.md):
  0  success
  1  `check --fail-on …` matched (the change needs the review level you fail on)
  2  usage error (unknown option, missing argument)
  3  configuration missing: no server URL or no token
  4  the server is unreachable (connection refused, DNS, timeout)
  5  the server refused the token (401/403)
  6  git failed: not a git repository, or an unknown ref
  7  the server answered with another error (400, 404, 5xx, not JSON)
  8  rules: a file in the output folder was not written by contextkb, or cannot be written
  9  check --post: the GitHub/GitLab API could not be reached or refused the comment
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence

import httpx

from contextkb_cli import __version__
from contextkb_cli import comment as comment_mod
from contextkb_cli import rules as rules_mod

EXIT_OK = 0
EXIT_FAIL_ON = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
EXIT_REFUSED = 5
EXIT_GIT = 6
EXIT_SERVER = 7
EXIT_FILES = 8
EXIT_POST = 9

EXIT_CODES_HELP = """exit codes:
  0  success
  1  check: the --fail-on condition matched; rules --check: the files are out of date
  2  usage error
  3  no server URL or token (--url/CONTEXTKB_URL, --token/CONTEXTKB_TOKEN)
  4  server unreachable
  5  token refused by the server (401/403)
  6  git failed (not a git repository, unknown ref)
  7  other server error
  8  rules: a file in the way was not written by contextkb, or cannot be written
  9  check --post: the GitHub/GitLab API was unreachable or refused the comment
"""


class CliError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message = message
        self.code = code


def _progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


# --- git ---------------------------------------------------------------------------------------


def _git(args: list[str], cwd: str | None) -> str:
    try:
        # git from PATH, with arguments we build (refs are checked by rev-parse first).
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except FileNotFoundError:
        raise CliError("git is not installed (or not on PATH).", EXIT_GIT) from None
    except subprocess.TimeoutExpired:
        raise CliError(f"git {args[0]} took too long.", EXIT_GIT) from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["git failed"])[0]
        if "not a git repository" in done.stderr:
            first = f"{os.path.abspath(cwd or '.')} is not a git repository."
        raise CliError(first, EXIT_GIT)
    return done.stdout


def _resolve(ref: str, cwd: str | None) -> str:
    _git(["rev-parse", "--git-dir"], cwd)  # "not a git repository" before "unknown ref"
    try:
        return _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd).strip()
    except CliError:
        raise CliError(f"unknown git ref {ref!r}.", EXIT_GIT) from None


def changed_files(base: str, head: str, cwd: str | None) -> list[dict]:
    """[{path, additions, deletions}] changed between the merge base of `base` and `head`, and
    `head` (what a pull request shows). Renames count as a removal and an addition."""
    base_sha, head_sha = _resolve(base, cwd), _resolve(head, cwd)
    out = _git(["diff", "--numstat", "--no-renames", "-z", f"{base_sha}...{head_sha}"], cwd)
    files = []
    for entry in out.split("\0"):
        if not entry.strip():
            continue
        added, deleted, path = entry.split("\t", 2)
        files.append(
            {
                "path": path,
                "additions": int(added) if added.isdigit() else 0,
                "deletions": int(deleted) if deleted.isdigit() else 0,
            }
        )
    return files


# --- the server --------------------------------------------------------------------------------


class Server:
    def __init__(self, url: str | None, token: str | None, timeout: float):
        if not url:
            raise CliError("no server URL: pass --url or set CONTEXTKB_URL.", EXIT_CONFIG)
        if not token:
            raise CliError("no token: pass --token or set CONTEXTKB_TOKEN.", EXIT_CONFIG)
        if not url.startswith(("http://", "https://")):
            raise CliError(f"the server URL must start with https:// (got {url!r}).", EXIT_CONFIG)
        self.url = url.rstrip("/")
        self.token = token
        self.client = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"contextkb-cli/{__version__}",
            },
            timeout=timeout,
        )

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}".splitlines()[0],
                EXIT_UNREACHABLE,
            ) from None
        if response.status_code in (401, 403):
            raise CliError(
                f"the server refused the token ({response.status_code}): {_message(response)}",
                EXIT_REFUSED,
            )
        if response.status_code >= 400:
            raise CliError(
                f"the server answered {response.status_code}: {_message(response)}", EXIT_SERVER
            )
        return response

    def json(self, method: str, path: str, **kwargs) -> dict:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"the server did not answer JSON at {path} (is {self.url} a contextkb server?)",
                EXIT_SERVER,
            ) from None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "error"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return response.reason_phrase or "error"


# --- check: the pull-request comment -----------------------------------------------------------

_LEVEL_NOTE = {
    "deep": "touches a guardrail, a high-impact one-way-door decision, or a stale/suspect record",
    "normal": "recorded context applies; check the change against it",
    "light": "no recorded context governs this change",
}


def _cell(text) -> str:
    return re.sub(r"\s+", " ", str(text or "")).replace("|", "\\|").strip()


def render_comment(result: dict, *, base: str, head: str) -> str:
    level = result["level"]
    lines = [
        f"### contextkb: review level **{level}**",
        "",
        f"{_LEVEL_NOTE.get(level, '')} ({len(result['paths'])} changed path(s), "
        f"`{base}...{head}`).",
        "",
    ]
    lines += [f"- {reason}" for reason in result["reasons"]]
    records = result["records"]
    if records:
        lines += [
            "",
            "#### What governs this change",
            "",
            "| Record | Kind | Status | Freshness | Impact | Door | Owner | Why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in records:
            why = (
                "anchored: " + ", ".join(f"`{p}`" for p in r["matched_paths"][:5])
                if r["found_by"] == "anchor"
                else "found by the description"
            )
            door = {"one_way": "one-way", "two_way": "two-way"}.get(r.get("reversibility"), "")
            lines.append(
                f"| [{r['key']}]({r['url']}) {_cell(r['title'])} | {r['kind']} | {r['status']} "
                f"| {r['freshness']} | {r.get('impact') or ''} | {door} "
                f"| {_cell(r['owner']['name'])} | {why} |"
            )
    first = [r for r in records if r["key"] in result.get("verify_first", [])]
    if first:
        lines += ["", "#### Verify first", ""]
        for r in first:
            reasons = "; ".join(r.get("freshness_reasons") or [])
            lines.append(
                f"1. **{r['key']}** {r['title']} ({r['kind']}, {r['freshness']})"
                + (f": {reasons}" if reasons else "")
            )
    if result.get("ask"):
        lines += ["", "#### Whom to ask", ""]
        lines += [f"- {_cell(a['owner'])}: {', '.join(a['records'])}" for a in result["ask"]]
    unanchored = result.get("unanchored_paths") or []
    if unanchored:
        lines += ["", f"#### Not covered by any record ({len(unanchored)})", ""]
        lines += [f"- `{p}`" for p in unanchored[:20]]
        if len(unanchored) > 20:
            lines.append(f"- … and {len(unanchored) - 20} more")
    return "\n".join(lines) + "\n"


def _fails(result: dict, fail_on: str | None) -> bool:
    if fail_on == "deep":
        return result["level"] == "deep"
    if fail_on == "guardrail":
        return any(
            r["kind"] == "guardrail" and r["found_by"] == "anchor" for r in result["records"]
        )
    if fail_on == "stale":
        return any(r["freshness"] in ("stale", "suspect") for r in result["records"])
    return False


def cmd_check(args, server_factory) -> int:
    server = server_factory()
    _progress(f"Comparing {args.base}...{args.head} with git…", args.quiet)
    files = changed_files(args.base, args.head, args.repo)
    if not files and not (args.title or "").strip() and not (args.description or "").strip():
        # Nothing changed (e.g. base == head): nothing to ask the server.
        result = {
            "level": "light",
            "reasons": [f"no path changed between {args.base} and {args.head}"],
            "records": [],
            "verify_first": [],
            "ask": [],
            "paths": [],
            "unanchored_paths": [],
            "lines_changed": 0,
        }
    else:
        _progress(f"Assessing {len(files)} changed path(s) at {server.url}…", args.quiet)
        result = server.json(
            "POST",
            "/api/v1/changes/assess/",
            json={
                "changes": files,
                "title": args.title or "",
                "description": args.description or "",
                "spaces": args.space or [],
            },
        )
    markdown = render_comment(result, base=args.base, head=args.head)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(markdown)
    if args.post:
        _progress(f"Posting the comment on {args.post}…", args.quiet)
        try:
            state, where = comment_mod.post_comment(
                args.post, markdown, env=os.environ, number=args.pr, timeout=args.timeout
            )
        except comment_mod.PostError as exc:
            raise CliError(exc.message, EXIT_CONFIG if exc.config else EXIT_POST) from None
        _progress(f"Comment {state}: {where}".rstrip(": "), args.quiet)
    return EXIT_FAIL_ON if _fails(result, args.fail_on) else EXIT_OK


def cmd_context(args, server_factory) -> int:
    server = server_factory()
    params: list[tuple[str, str]] = [("q", args.query or "")]
    params += [("paths", p) for p in args.paths or []]
    params += [("spaces", s) for s in args.space or []]
    params += [("kinds", k) for k in args.kind or []]
    params += [
        ("max_tokens", str(args.max_tokens)),
        ("format", "json" if args.json else "markdown"),
    ]
    _progress(f"Fetching context from {server.url}…", args.quiet)
    response = server.request("GET", "/api/v1/context/", params=params)
    if args.json:
        try:
            print(json.dumps(response.json(), indent=2))
        except ValueError:
            raise CliError("the server did not answer JSON.", EXIT_SERVER) from None
    else:
        sys.stdout.write(response.text if response.text.endswith("\n") else response.text + "\n")
    return EXIT_OK


def _repository_name(cwd: str | None) -> str:
    try:
        remote = _git(["remote", "get-url", "origin"], cwd).strip()
    except CliError:
        remote = ""
    match = re.search(r"[:/]([^/:]+/[^/]+?)(?:\.git)?/?$", remote)
    if match:
        return match.group(1)
    top = _git(["rev-parse", "--show-toplevel"], cwd).strip()
    return os.path.basename(top)


def cmd_drift(args, server_factory) -> int:
    if args.paths:
        paths, commit = list(args.paths), args.commit or ""
        repository = args.repository
        if not repository:
            raise CliError("with --paths, name the repository with --repository.", EXIT_USAGE)
    else:
        _progress(f"Comparing {args.base}...{args.head} with git…", args.quiet)
        paths = [f["path"] for f in changed_files(args.base, args.head, args.repo)]
        commit = args.commit or _resolve(args.head, args.repo)
        repository = args.repository or _repository_name(args.repo)
    server = server_factory()
    _progress(
        f"Reporting {len(paths)} changed path(s) of {repository} to {server.url}…", args.quiet
    )
    result = server.json(
        "POST",
        "/api/v1/drift/",
        json={"repository": repository, "commit": commit, "changed_paths": paths},
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        state = "reported" if result.get("created", True) else "already reported"
        print(
            f"{repository}@{commit[:12] or '-'}: {state}; "
            f"{result.get('suspect_count', 0)} record(s) marked suspect, "
            f"{len(result.get('unmatched_paths') or [])} path(s) matched no anchor."
        )
    return EXIT_OK


def cmd_rules(args, server_factory) -> int:
    server = server_factory()
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"{out} is not a folder.", EXIT_FILES)
    params = [("spaces", s) for s in args.space or []]
    _progress(f"Fetching rule files from {server.url}…", args.quiet)
    answer = server.json("GET", "/api/v1/rules/", params=params)
    try:
        marker = str(answer["marker"])
        files = {
            rules_mod.check_path(f["path"]): str(f["content"]).encode("utf-8")
            for f in answer["files"]
        }
    except rules_mod.UnsafePath as exc:
        raise CliError(
            f"the server sent an unsafe file path: {str(exc)[:80]!r}", EXIT_SERVER
        ) from None
    except (KeyError, TypeError):
        raise CliError(
            "the server's answer has no rule files (is it a contextkb server?)", EXIT_SERVER
        ) from None
    plan = rules_mod.plan(out, files, marker)
    if args.check:
        for label, paths in (
            ("missing", plan.create),
            ("differs", plan.update),
            ("extra", plan.remove),
            ("not written by contextkb", plan.foreign),
        ):
            for rel in paths:
                print(f"{label}: {os.path.join(out, rel)}")
        if plan.changes:
            print(
                f"{len(plan.create) + len(plan.update) + len(plan.remove) + len(plan.foreign)} "
                f"rule file(s) out of date; run `contextkb rules --out {out}`.",
                file=sys.stderr,
            )
            return EXIT_FAIL_ON
        print(f"{len(plan.unchanged)} rule file(s) up to date.")
        return EXIT_OK
    if plan.foreign:
        raise CliError(
            f"{os.path.join(out, plan.foreign[0])} exists and was not written by contextkb; "
            f"move it away (or choose another --out) and run again."
            + (f" ({len(plan.foreign) - 1} more)" if len(plan.foreign) > 1 else ""),
            EXIT_FILES,
        )
    try:
        rules_mod.apply(out, files, plan)
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename or out}: {exc.strerror}", EXIT_FILES) from None
    for label, paths in (
        ("created", plan.create),
        ("updated", plan.update),
        ("removed", plan.remove),
    ):
        for rel in paths:
            print(f"{label}: {os.path.join(out, rel)}")
    _progress(
        f"{len(files)} rule file(s) for {len(answer.get('records') or [])} record(s): "
        f"{len(plan.create)} created, {len(plan.update)} updated, {len(plan.remove)} removed, "
        f"{len(plan.unchanged)} unchanged.",
        args.quiet,
    )
    return EXIT_OK


def cmd_mcp(args, server_factory) -> int:
    from contextkb_cli.mcp_proxy import McpProxy

    server = server_factory()
    # Fail fast, with one line and an exit code, before speaking MCP: the MCP client shows it.
    server.json("GET", "/api/v1/me/")
    _progress(f"Forwarding MCP over stdio to {server.url}{args.path}", args.quiet)
    proxy = McpProxy(
        url=server.url + args.path,
        token=server.token,
        timeout=args.timeout,
        user_agent=f"contextkb-cli/{__version__} (mcp)",
        stdout=sys.stdout.buffer,
    )
    server.client.close()
    return proxy.run(sys.stdin.buffer)


# --- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, as documented
        self.exit(EXIT_USAGE, f"contextkb: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="server URL (default: $CONTEXTKB_URL)")
    common.add_argument("--token", default=None, help="API token (default: $CONTEXTKB_TOKEN)")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    kwargs = {"formatter_class": argparse.RawDescriptionHelpFormatter, "epilog": EXIT_CODES_HELP}
    parser = _Parser(
        prog="contextkb",
        description="Command-line client of a contextkb server.",
        **kwargs,
    )
    parser.add_argument("--version", action="version", version=f"contextkb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser(
        "check",
        parents=[common],
        help="what governs a change, as a pull-request comment",
        description="Compute the paths changed between --base and --head with git, ask the "
        "server which records govern them, and print a pull-request comment (markdown): the "
        "review level, what governs the change, what to verify first and whom to ask.",
        **kwargs,
    )
    check.add_argument("--base", required=True, help="base ref, e.g. origin/main")
    check.add_argument("--head", default="HEAD", help="head ref (default HEAD)")
    check.add_argument("--repo", default=None, help="git working folder (default: current)")
    check.add_argument("--title", default="", help="pull-request title")
    check.add_argument("--description", default="", help="pull-request description")
    check.add_argument("--space", action="append", help="space slug (repeatable; default all)")
    check.add_argument("--json", action="store_true", help="machine output (the API's JSON)")
    check.add_argument(
        "--fail-on",
        choices=["deep", "guardrail", "stale"],
        default=None,
        help="exit 1 when the level is deep / a guardrail is touched / a record is stale",
    )
    check.add_argument(
        "--post",
        choices=["github", "gitlab"],
        default=None,
        help="also post the comment on the pull request (GitHub) or merge request (GitLab), "
        "updating the one posted before; see docs/ci.md for the environment it reads",
    )
    check.add_argument(
        "--pr", type=int, default=None, help="PR/MR number (default: from the CI environment)"
    )
    check.set_defaults(func=cmd_check)

    rules = sub.add_parser(
        "rules",
        parents=[common],
        help="write path-scoped rule files for agents (AGENTS.md, Copilot, Cursor)",
        description="Write the rule files agents read, from the owner-verified records and "
        "their anchors: nested AGENTS.md in the anchored folders, "
        ".github/instructions/<name>.instructions.md (applyTo) and .cursor/rules/<name>.mdc "
        "(globs). The same records always give the same bytes. Only files carrying contextkb's "
        "marker are updated or removed. --check writes nothing and exits 1 if a file is "
        "missing, differs or is no longer needed.",
        **kwargs,
    )
    rules.add_argument("--out", required=True, help="folder to write into (the repository root)")
    rules.add_argument("--space", action="append", help="space slug (repeatable; default all)")
    rules.add_argument("--check", action="store_true", help="compare only; exit 1 when out of date")
    rules.set_defaults(func=cmd_rules)

    mcp = sub.add_parser(
        "mcp",
        parents=[common],
        help="a stdio MCP server that forwards to the server's /mcp",
        description="Speak MCP over stdio (for an MCP client's `command`) and forward every "
        "message to the contextkb server's Streamable HTTP endpoint with the token. Checks the "
        "URL and token first: a bad one exits with its code before any MCP traffic.",
        **kwargs,
    )
    mcp.add_argument("--path", default="/mcp", help="the MCP endpoint's path (default /mcp)")
    mcp.set_defaults(func=cmd_mcp)

    context = sub.add_parser(
        "context",
        parents=[common],
        help="print a context bundle for a task and/or paths",
        description="Print the ranked, budgeted context bundle (markdown, or --json).",
        **kwargs,
    )
    context.add_argument("query", nargs="?", default="", help="what you are about to do")
    context.add_argument("--paths", nargs="*", help="files you are working on")
    context.add_argument("--space", action="append", help="space slug (repeatable)")
    context.add_argument("--kind", action="append", help="decision, constraint, intent, guardrail")
    context.add_argument("--max-tokens", type=int, default=4000, help="budget (default 4000)")
    context.add_argument("--json", action="store_true", help="JSON instead of markdown")
    context.set_defaults(func=cmd_context)

    drift = sub.add_parser(
        "drift",
        parents=[common],
        help="report the paths a commit range changed (records anchored there become suspect)",
        description="Tell the server which paths changed, so records anchored there become "
        "suspect. Needs a read-write token. Paths come from git (--base/--head) or --paths.",
        **kwargs,
    )
    drift.add_argument("--base", default="HEAD~1", help="base ref (default HEAD~1)")
    drift.add_argument("--head", default="HEAD", help="head ref (default HEAD)")
    drift.add_argument("--repo", default=None, help="git working folder (default: current)")
    drift.add_argument("--paths", nargs="*", help="changed paths instead of asking git")
    drift.add_argument("--repository", default=None, help="name, e.g. acme/shop (default: origin)")
    drift.add_argument("--commit", default=None, help="commit id (default: --head's)")
    drift.add_argument("--json", action="store_true", help="the server's JSON answer")
    drift.set_defaults(func=cmd_drift)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def server_factory() -> Server:
        return Server(
            args.url or os.environ.get("CONTEXTKB_URL"),
            args.token or os.environ.get("CONTEXTKB_TOKEN"),
            args.timeout,
        )

    try:
        return args.func(args, server_factory)
    except CliError as exc:
        print(f"contextkb: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("contextkb: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

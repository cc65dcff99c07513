"""Mixed load against `make serve`: 50 users browsing, editing and fetching context for 5 minutes.

    .venv/bin/python bench/load_test.py [--users 50] [--duration 300] [--workers 4] [--threads 4]

Self-contained and harmless to your data: it starts a private embedded PostgreSQL in a temporary
folder, migrates it, seeds one space (20 people, 300 records) and embeds the records, collects
static files, starts `make serve` (its launcher: gunicorn, MCP, a Celery worker that embeds
edited records and writes the context usage log, and beat, under supervisord) on free local
ports, runs the load with asyncio +
httpx, and prints per action: requests, errors, p50/p95/p99 latency, and overall throughput
(plus a progress line every 15 s). Everything is stopped and deleted at the end. Only 127.0.0.1
is contacted. Exit status 1 when any request failed.

Each virtual user loops, with a think time of 0.5 to 1.5 s between actions:
- users start 0.3 s apart (50 users: 15 s ramp-up) and sign in once through the login form;
  the --duration seconds of load are counted from the end of the ramp-up;
- 55 % browsing: space record list, a record page, a search in the list,
  a record's history;
- 30 % context fetches (`GET /api/v1/context/` with task text, sometimes file paths);
- 15 % edits: read a record through the API, then `PATCH` it with `If-Match` (several users pick
  the same hot records on purpose, so some edits get the expected 412).

An error is any status other than 200/302 (and 412 for edits), or a transport error. The API rate
limits are raised for the run: every virtual user shares one address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core import embedded_db  # noqa: E402

WORDS = [
    *[
        "payments",
        "ledger",
        "refund",
        "settlement",
        "payout",
        "merchant",
        "currency",
        "invoice",
        "retry",
        "idempotency",
    ],
    *[
        "queue",
        "worker",
        "postgres",
        "index",
        "migration",
        "cache",
        "latency",
        "timeout",
        "api",
        "token",
        "scope",
        "audit",
    ],
    *[
        "billing",
        "tax",
        "region",
        "encryption",
        "backup",
        "restore",
        "deploy",
        "rollback",
        "feature",
        "flag",
        "search",
    ],
    *[
        "embedding",
        "context",
        "guardrail",
        "constraint",
        "decision",
        "intent",
        "owner",
        "review",
        "freshness",
    ],
]
RAMP_SECONDS = 0.3  # between two users' starts
PATHS = ["services/billing/ledger.py", "services/payments/refunds.py", "infra/db/migrations/"]
PASSWORD = "Load-test-pw-1"

SEED = """
import json, random
from apps.accounts import services as accounts
from apps.accounts.models import Membership, User
from apps.records import services
random.seed(7)
words = %(words)r
admin = User.objects.create_user("load-admin", "load-admin@example.com", %(password)r)
space = accounts.space_create(name="Load", slug="load", actor=admin)
people = [admin]
for n in range(19):
    user = User.objects.create_user(f"load{n}", f"load{n}@example.com", %(password)r)
    accounts.membership_set(space=space, user=user, role="editor", actor=admin)
    people.append(user)
kinds = ["decision", "constraint", "intent", "guardrail"]
ids = []
for n in range(300):
    text = " ".join(random.choice(words) for _ in range(60))
    record = services.record_create(
        space=space, kind=kinds[n %% 4], actor=admin, owner_user=random.choice(people),
        title=" ".join(random.choice(words) for _ in range(5)).capitalize(),
        summary=" ".join(random.choice(words) for _ in range(12)),
        body="## Context\\n\\n" + text + "\\n\\n## Decision\\n\\n" + text[::-1],
        tags=random.sample(words, 3), anchors=["services/billing/**"] if n %% 7 == 0 else [],
        status="accepted",
    )
    ids.append(record.pk)
tokens = [accounts.token_create(user=u, name="load", scope="read_write")[1] for u in people]
print("SEED=" + json.dumps({"ids": ids, "tokens": tokens, "users": [u.username for u in people]}))
"""


def env_for(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        CONTEXTKB_VAR_DIR=str(var_dir),
        DJANGO_DEBUG="false",
        DATABASE_CONN_MAX_AGE="60",
        LOG_LEVEL="WARNING",
        API_THROTTLE_TOKEN="1000000/minute",
        API_THROTTLE_IP="1000000/minute",
        LOGIN_LOCKOUT_IP_FAILURES="0",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stats:
    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.conflicts = 0

    def add(self, action: str, seconds: float, status: int, expected=(200, 302)) -> None:
        self.latency[action].append(seconds)
        if status not in expected:
            self.errors[action].append(str(status))


async def timed(stats: Stats, action: str, call, expected=(200, 302)):
    started = time.perf_counter()
    try:
        response = await call
    except httpx.HTTPError as exc:
        stats.add(action, time.perf_counter() - started, 0)
        stats.errors[action][-1] = type(exc).__name__
        return None
    stats.add(action, time.perf_counter() - started, response.status_code, expected)
    return response


async def login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = await client.post(
        "/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": str(client.base_url) + "/accounts/login/"},
    )
    if done.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {done.status_code}")


async def user_loop(n: int, base: str, seed: dict, stats: Stats, until: float) -> None:
    rng = random.Random(n)
    token = seed["tokens"][n % len(seed["tokens"])]
    username = seed["users"][n % len(seed["users"])]
    keys: dict[int, str] = {}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as browser,
        httpx.AsyncClient(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as api,
    ):
        # Ramp up like a real morning (and like locust's spawn rate): one user every 0.3 s.
        # Sign-in hashes the password (PBKDF2, deliberately slow), so 50 at once would only
        # measure that.
        await asyncio.sleep(n * RAMP_SECONDS)
        started = time.perf_counter()
        try:
            await login(browser, username)
        except (httpx.HTTPError, RuntimeError) as exc:
            stats.add("sign in", time.perf_counter() - started, 0)
            stats.errors["sign in"][-1] = type(exc).__name__
            return
        stats.add("sign in", time.perf_counter() - started, 200)
        while time.monotonic() < until:
            roll = rng.random()
            record_id = rng.choice(seed["ids"])
            if roll < 0.55:
                page = rng.random()
                if page < 0.3:
                    await timed(stats, "browse: space list", browser.get("/s/load/"))
                elif page < 0.5:
                    q = " ".join(rng.sample(WORDS, 2))
                    await timed(stats, "browse: search", browser.get("/s/load/", params={"q": q}))
                elif page < 0.9 or record_id not in keys:
                    read = await timed(
                        stats, "api: read record", api.get(f"/api/v1/records/{record_id}/")
                    )
                    if read is not None and read.status_code == 200:
                        keys[record_id] = read.json()["key"]
                        await timed(
                            stats, "browse: record page", browser.get(f"/s/load/{keys[record_id]}/")
                        )
                else:
                    await timed(
                        stats, "browse: history", browser.get(f"/s/load/{keys[record_id]}/history/")
                    )
            elif roll < 0.85:
                params = {"q": " ".join(rng.sample(WORDS, 4)), "space": "load", "max_tokens": 2000}
                if rng.random() < 0.3:
                    params["paths"] = rng.choice(PATHS)
                await timed(stats, "context fetch", api.get("/api/v1/context/", params=params))
            else:
                hot = rng.choice(seed["ids"][:10])  # contention on purpose
                read = await timed(stats, "edit: read", api.get(f"/api/v1/records/{hot}/"))
                if read is not None and read.status_code == 200:
                    await asyncio.sleep(rng.uniform(0.05, 0.3))  # the "typing" gap
                    wrote = await timed(
                        stats,
                        "edit: PATCH If-Match",
                        api.patch(
                            f"/api/v1/records/{hot}/",
                            json={"summary": f"edited by user {n} at {time.time():.3f}"},
                            headers={"If-Match": read.headers["ETag"]},
                        ),
                        expected=(200, 412),
                    )
                    if wrote is not None and wrote.status_code == 412:
                        stats.conflicts += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(stats: Stats, seconds: float) -> None:
    total = sum(len(v) for v in stats.latency.values())
    errors = sum(len(v) for v in stats.errors.values())
    print(f"\n{total} requests in {seconds:.0f} s = {total / seconds:.1f} req/s; errors: {errors}; "
          f"expected 412 conflicts: {stats.conflicts}")  # fmt: skip
    print(
        "\n| action | requests | errors | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
    )
    everything: list[float] = []
    for action in sorted(stats.latency):
        values = stats.latency[action]
        everything += values
        print(
            f"| {action} | {len(values)} | {len(stats.errors[action])} | "
            f"{statistics.median(values) * 1000:.0f} | {pct(values, 95) * 1000:.0f} | "
            f"{pct(values, 99) * 1000:.0f} |"
        )
    print(
        f"| **all** | {len(everything)} | {errors} | {statistics.median(everything) * 1000:.0f} | "
        f"{pct(everything, 95) * 1000:.0f} | {pct(everything, 99) * 1000:.0f} |"
    )
    for action, codes in stats.errors.items():
        if codes:
            print(f"errors in {action}: {sorted(set(codes))}")


async def progress(stats: Stats, started: float, until: float) -> None:
    """A line every 15 s on stderr, so a 5-minute run shows it is alive (and healthy)."""
    while time.monotonic() < until:
        await asyncio.sleep(min(15.0, max(0.1, until - time.monotonic())))
        done = sum(len(v) for v in stats.latency.values())
        errors = sum(len(v) for v in stats.errors.values())
        left = max(0.0, until - time.monotonic())
        print(f"  {time.monotonic() - started:5.0f} s: {done} requests, {errors} errors, "
              f"{stats.conflicts} expected 412s; {left:.0f} s to go", file=sys.stderr, flush=True)  # fmt: skip


async def run_load(base: str, seed: dict, users: int, duration: float) -> tuple[Stats, float]:
    stats = Stats()
    started = time.monotonic()
    # The measured load runs `duration` seconds after the last user has started.
    until = started + RAMP_SECONDS * users + duration
    watcher = asyncio.create_task(progress(stats, started, until))
    await asyncio.gather(*(user_loop(n, base, seed, stats, until) for n in range(users)))
    watcher.cancel()
    return stats, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50, help="virtual users (default 50)")
    parser.add_argument(
        "--duration",
        type=float,
        default=300,
        help="seconds of load after the ramp-up (default 300)",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn worker processes (default 4)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gunicorn worker (default 4)"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ckb-load-"))
    data_dir, var_dir = root / "pgdata", root / "var"
    server = None
    try:
        url = embedded_db.ensure_running(data_dir).url()
        env = env_for(url, var_dir)
        print("migrating, seeding and collecting static files…", flush=True)
        manage(env, "migrate", "--no-input", "-v0")
        manage(env, "collectstatic", "--no-input", "-v0")
        out = manage(env, "shell", "-c", SEED % {"words": WORDS, "password": PASSWORD})
        seed = json.loads(next(x for x in out.splitlines() if x.startswith("SEED="))[5:])
        # Vectors for every record, as the worker computes them in production.
        manage(env, "reindex_embeddings")
        port = free_port()
        log = (var_dir / "serve.log").open("w")
        # `make serve` (its launcher): gunicorn, MCP, a Celery worker and beat under supervisord,
        # DEBUG off, static files from whitenoise; DATABASE_URL is the private database.
        server = subprocess.Popen(
            [sys.executable, "-m", "apps.core.launcher", "serve"],
            cwd=ROOT,
            env={
                **env,
                "WEB_PORT": str(port),
                "MCP_PORT": str(free_port()),
                "WEB_WORKERS": str(args.workers),
                "WEB_THREADS": str(args.threads),
                "CELERY_WORKER_CONCURRENCY": "1",
                "DJANGO_SECRET_KEY": "load-test-" + "k" * 50,
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            },
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        # Warm-up (not measured): each worker loads the embedding model on its first query.
        headers = {"Authorization": f"Bearer {seed['tokens'][0]}"}
        for _ in range(args.workers * args.threads):
            httpx.get(base + "/api/v1/context/", params={"q": "warm up", "space": "load"},
                      headers=headers, timeout=60)  # fmt: skip
        print(
            f"gunicorn: {args.workers} workers x {args.threads} threads, one Celery worker; "
            f"{args.users} users ({RAMP_SECONDS * args.users:.0f} s ramp-up) then "
            f"{args.duration:.0f} s of load…",
            flush=True,
        )
        stats, seconds = asyncio.run(run_load(base, seed, args.users, args.duration))
        report(stats, seconds)
        if any(stats.errors.values()):
            print("\nserver log (tail):\n" + (var_dir / "serve.log").read_text()[-3000:])
            return 1
        return 0
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)  # Ctrl-C: supervisord stops everything
            server.wait(timeout=120)
        embedded_db.stop(data_dir)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

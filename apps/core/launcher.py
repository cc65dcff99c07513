"""Run every contextkb process on one host under supervisord: `make run` (development) and
`make serve` (production on one host), `make status`, `make stop`.

supervisord (the `supervisor` package) restarts a process that dies, with a growing back-off when
it dies again at once, and logs each exit and restart; the other processes keep running. On
Ctrl-C (SIGINT) or SIGTERM it stops the programs one priority band at a time, highest first,
waiting for each band to exit: web and MCP stop taking requests, beat stops, the Celery worker
finishes the tasks it is running (a warm shutdown; tasks not started go back to the queue), and
the embedded PostgreSQL stops last. Each program runs in its own process group, so the
terminal's Ctrl-C reaches supervisord alone, never Celery's pool processes directly.

Usage: python -m apps.core.launcher {run,serve,status,stop}
       python -m apps.core.launcher celery ARGS…  (what the worker and beat programs run)
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def var_dir() -> Path:
    return Path(os.environ.get("CONTEXTKB_VAR_DIR") or ROOT / "var")


def config_path() -> Path:
    return var_dir() / "supervisor" / "supervisord.conf"


@dataclass
class Program:
    """One supervised process."""

    name: str
    command: list[str]
    # Lower starts first and stops last (supervisord's priority).
    priority: int
    # Seconds between the stop signal and SIGKILL.
    stop_wait: int = 10
    stop_signal: str = "TERM"
    # Signal the whole process group (a server whose own children must stop with it) or only
    # the main process (Celery: its pool processes must hear from the worker, not from us).
    signal_group: bool = True
    environment: dict[str, str] = field(default_factory=dict)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def programs(mode: str) -> list[Program]:
    """What `make run` (mode "run") or `make serve` (mode "serve") supervises."""
    py = sys.executable
    web_port = _env_int("WEB_PORT", 8000)
    mcp_port = _env_int("MCP_PORT", 8001)
    host = os.environ.get("WEB_HOST", "").strip() or ("0.0.0.0" if mode == "run" else "127.0.0.1")  # noqa: S104
    progs = _background_programs(py)
    if mode == "run":
        return progs + _development_servers(py, f"{host}:{web_port}", mcp_port)
    return progs + _production_servers(py, f"{host}:{web_port}", mcp_port)


def _background_programs(py: str) -> list[Program]:
    """The embedded PostgreSQL (unless DATABASE_URL names a server), the Celery worker and beat."""
    task_limit = _env_int("CELERY_TASK_TIME_LIMIT", 300)
    concurrency = _env_int("CELERY_WORKER_CONCURRENCY", 2)
    progs: list[Program] = []
    if not os.environ.get("DATABASE_URL"):
        progs.append(
            Program(
                "db",
                [py, "-m", "apps.core.embedded_db", "serve"],
                priority=100,
                stop_wait=60,
            )
        )
    celery = [py, "-m", "apps.core.launcher", "celery", "-A", "contextkb"]
    progs += [
        Program(
            "worker",
            [*celery, "worker", "--loglevel=INFO", f"--concurrency={concurrency}"],
            priority=200,
            # A warm shutdown waits for the running tasks, which the hard time limit bounds.
            stop_wait=task_limit + 15,
            signal_group=False,
        ),
        Program("beat", [*celery, "beat", "--loglevel=INFO"], priority=300),
    ]
    return progs


def _development_servers(py: str, web_bind: str, mcp_port: int) -> list[Program]:
    return [
        Program(
            "web",
            # No autoreloader: its parent/child pair would outlive a kill of the parent.
            [py, "manage.py", "runserver", "--noreload", web_bind],
            priority=400,
            # The development server makes a thread (and a connection) per request: close
            # each connection when its request ends, so a burst cannot pile them up.
            environment={"DATABASE_CONN_MAX_AGE": "0"},
        ),
        Program(
            "mcp",
            [
                py,
                "-m",
                "uvicorn",
                # The app is imported with the cyclic garbage collector paused (about a
                # fifth less CPU): a restart after a crash answers sooner.
                "--factory",
                "apps.core.launcher:asgi_application",
                "--host",
                "127.0.0.1",
                "--port",
                str(mcp_port),
                "--timeout-graceful-shutdown",
                "5",
            ],
            priority=400,
        ),
    ]


def _production_servers(py: str, web_bind: str, mcp_port: int) -> list[Program]:
    graceful = _env_int("WEB_GRACEFUL_TIMEOUT", 20)

    def gunicorn(name: str, app: str, bind: str, worker: str, options: list[str]) -> Program:
        return Program(
            name,
            [
                py,
                "-m",
                "gunicorn",
                app,
                "--bind",
                bind,
                "--worker-class",
                f"apps.core.gunicorn_workers.{worker}",
                *options,
                "--timeout",
                "60",
                "--graceful-timeout",
                str(graceful),
                "--keep-alive",
                "75",
                # The master imports the app once and forks ready workers: a restart costs
                # one import, not one per worker at the same time.
                "--preload",
            ],
            priority=400,
            stop_wait=graceful + 5,
        )

    return [
        gunicorn(
            "web",
            "contextkb.wsgi:application",
            web_bind,
            "ThreadWorker",
            [
                "--workers",
                str(_env_int("WEB_WORKERS", 2)),
                "--threads",
                str(_env_int("WEB_THREADS", 4)),
            ],
        ),
        gunicorn(
            "mcp",
            "contextkb.asgi:application",
            f"127.0.0.1:{mcp_port}",
            "UvicornWorker",
            ["--workers", str(_env_int("MCP_WORKERS", 2))],
        ),
    ]


def import_paused_gc(import_app):
    """Import an app with Python's cyclic garbage collector paused, then freeze what was
    imported (never scanned again, and shared copy-on-write by forked workers) and resume.
    Start-up creates hundreds of thousands of long-lived objects (Django's models, the MCP SDK's
    pydantic models); collections during the import scan them again and again for nothing."""
    import gc

    gc.disable()
    try:
        return import_app()
    finally:
        gc.freeze()
        gc.enable()


def asgi_application():
    """The ASGI app for `uvicorn --factory` (the `mcp` program of `make run`)."""

    def load():
        from contextkb.asgi import application

        return application

    return import_paused_gc(load)


def celery_main(argv: list[str]) -> None:
    """`celery …` (the worker and beat programs) with the collector paused while it imports
    Django and the tasks, resumed when the worker is ready (and in each pool process when it
    starts) or when beat starts: their restarts share the CPU with web's and MCP's."""
    import gc

    from celery import signals

    def resume(**_kwargs) -> None:
        gc.freeze()
        gc.enable()

    def resume_in_child(**_kwargs) -> None:
        gc.enable()

    gc.disable()
    signals.worker_ready.connect(resume, weak=False)
    signals.beat_init.connect(resume, weak=False)
    signals.worker_process_init.connect(resume_in_child, weak=False)
    from celery.__main__ import main as celery

    sys.argv = ["celery", *argv]
    celery()


def render_config(progs: list[Program]) -> str:
    base = var_dir() / "supervisor"
    lines = [
        "; Written by `python -m apps.core.launcher` at each start; edit the launcher instead.",
        "[unix_http_server]",
        f"file={base / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={base / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={base / 'supervisord.pid'}",
        f"directory={ROOT}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{base / 'supervisor.sock'}",
        "",
    ]
    for p in progs:
        env = ",".join(f'{k}="{v}"' for k, v in p.environment.items())
        lines += [
            f"[program:{p.name}]",
            f"command={shlex.join(p.command).replace('%', '%%')}",
            f"directory={ROOT}",
            f"priority={p.priority}",
            "autostart=true",
            # Restart whenever it exits. A process that dies within `startsecs` of starting is
            # retried after 1, 2, 3… seconds (supervisord's back-off), up to `startretries` times.
            "autorestart=true",
            "startsecs=1",
            "startretries=30",
            f"stopsignal={p.stop_signal}",
            f"stopwaitsecs={p.stop_wait}",
            f"stopasgroup={'true' if p.signal_group else 'false'}",
            "killasgroup=true",
            # Everything to the terminal (or the service manager's journal).
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "redirect_stderr=true",
        ]
        if env:
            lines.append(f"environment={env}")
        lines.append("")
    return "\n".join(lines)


def check_serve_environment(environ: dict[str, str]) -> list[str]:
    """What `make serve` needs that is not set; each line says what to set."""
    problems = []
    if not (environ.get("DJANGO_SECRET_KEY", "").strip() or environ.get("DJANGO_SECRET_KEY_FILE")):
        problems.append(
            "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is not set. Set a long random value, "
            "e.g. DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if not environ.get("DJANGO_ALLOWED_HOSTS", "").strip():
        problems.append(
            "DJANGO_ALLOWED_HOSTS is not set. Set the host names the site is reached by, "
            "e.g. DJANGO_ALLOWED_HOSTS=kb.example.com"
        )
    if environ.get("DJANGO_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
        problems.append("DJANGO_DEBUG is true. `make serve` is for production: unset it.")
    return problems


def _manage(*args: str) -> None:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed (exit {done.returncode})")


def start(mode: str) -> None:
    if mode == "serve":
        problems = check_serve_environment(dict(os.environ))
        if problems:
            sys.stderr.write(
                "make serve refuses to start:\n" + "".join(f"  - {p}\n" for p in problems)
            )
            raise SystemExit(2)
        os.environ["DJANGO_DEBUG"] = "false"
        _manage("migrate", "--no-input", "-v0")
        _manage("collectstatic", "--no-input", "-v0")
    else:
        os.environ.setdefault("DJANGO_DEBUG", "true")
    if _supervisord_answers():
        raise SystemExit(
            f"contextkb is already running under {config_path()} (`make status`; `make stop`)"
        )
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(programs(mode)), encoding="utf-8")
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-c", str(path)])  # noqa: S606


def _supervisorctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config_path()), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _supervisord_answers() -> bool:
    if not config_path().exists():
        return False
    return _supervisorctl("pid").stdout.strip().isdigit()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["celery"]:
        celery_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m apps.core.launcher", description=__doc__)
    parser.add_argument("action", choices=["run", "serve", "status", "stop"])
    args = parser.parse_args(argv)
    if args.action in ("run", "serve"):
        start(args.action)
        return 0
    if not config_path().exists():
        print("not running (no supervisord configuration under var/supervisor/)")
        return 3
    pid = _supervisorctl("pid").stdout.strip()
    done = _supervisorctl("status" if args.action == "status" else "shutdown")
    out = (done.stdout + done.stderr).strip()
    if "refused connection" in out or "no such file" in out:
        print("not running")
        return 3
    if "SHUTDOWN_STATE" in out:
        print("shutting down")
        return 3
    print(out)
    if args.action == "stop" and pid.isdigit():
        # Return when everything has stopped (the worker may be finishing its tasks).
        while _alive(int(pid)):
            time.sleep(0.5)
        print("stopped")
    return done.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())

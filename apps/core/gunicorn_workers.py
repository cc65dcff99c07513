"""gunicorn worker classes for `make serve`: gunicorn's own, plus one thing. A worker dies with
its master (Linux PR_SET_PDEATHSIG): when the master is killed with SIGKILL, its workers would
otherwise keep the listening socket (a graceful stop can wait on open connections), and the
supervisor's new master could not bind the port. Its requests in flight are lost either way."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import warnings

from apps.core.gunicorn_worker import JsonErrorWorker as _ThreadWorker

with warnings.catch_warnings():
    # uvicorn points at the separate uvicorn-worker package; its own class still works.
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.workers import UvicornWorker as _UvicornWorker

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ThreadWorker(_ThreadWorker):
    """gunicorn's gthread worker with JSON error answers (WSGI: the web UI and the REST API)."""

    def init_process(self) -> None:
        _die_with_parent()
        super().init_process()


class UvicornWorker(_UvicornWorker):
    """uvicorn's worker for gunicorn (ASGI: the MCP server)."""

    def init_process(self) -> None:
        _die_with_parent()
        super().init_process()

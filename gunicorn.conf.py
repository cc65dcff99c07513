"""gunicorn reads this file from the directory it starts in (the repository root, the image's
working directory). Command-line options (`--workers`, `--threads`, `--bind`…) still apply.

The worker is gunicorn's threaded worker whose own error answers (an overlong URL or header,
which gunicorn refuses before Django sees the request) use the API's JSON error shape instead
of an HTML page (apps/core/gunicorn_worker.py), and that dies with its master
(apps/core/gunicorn_workers.py), so a restarted master can bind the port.
"""

import gc

worker_class = "apps.core.gunicorn_workers.ThreadWorker"

# The app is imported with Python's cyclic garbage collector paused (about a fifth less CPU, so a
# master restarted after a crash answers sooner); once the master is ready (with --preload, the
# app is imported by then) what was imported is frozen (never scanned again, shared
# copy-on-write by the workers) and the collector resumes. (Without --preload the workers import
# the app after that, with the collector running.)
gc.disable()


def _resume_gc() -> None:
    gc.freeze()
    gc.enable()


def when_ready(server) -> None:
    _resume_gc()

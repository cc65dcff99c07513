"""gunicorn reads this file from the directory it starts in (the repository root, the image's
working directory). Command-line options (`--workers`, `--threads`, `--bind`…) still apply.

The worker is gunicorn's threaded worker whose own error answers (an overlong URL or header,
which gunicorn refuses before Django sees the request) use the API's JSON error shape instead
of an HTML page (apps/core/gunicorn_worker.py), and that dies with its master
(apps/core/gunicorn_workers.py), so a restarted master can bind the port.
"""

worker_class = "apps.core.gunicorn_workers.ThreadWorker"

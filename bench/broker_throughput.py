"""How fast the local (filesystem) broker's worker drains tasks, and whether a backlog of
usage-log entries delays an embedding.

    .venv/bin/python bench/broker_throughput.py [--tasks 1000] [--usage-backlog 3000]

Starts `celery -A contextkb worker` (as `make run` does: both queues, concurrency 2) on the
configured database, enqueues --tasks no-op tasks (embed_record of a missing id: one query) and
times the drain; then queues --usage-backlog usage-log entries followed by one real record's
embedding, and times that embedding. Results are in docs/operations.md.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--usage-backlog", type=int, default=3000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from apps.core.task_context import local_broker_folders
    from apps.records.models import Record
    from apps.retrieval import tasks
    from apps.retrieval.models import RecordEmbedding
    from contextkb.celery import app

    queue_dir = Path(local_broker_folders(settings.VAR_DIR)["data_folder_in"])
    with app.connection_for_write() as conn:
        for q in app.conf.task_queues:
            conn.default_channel.queue_purge(q.name)
    started = time.monotonic()
    for _ in range(args.tasks):
        tasks.embed_record.delay(-1)
    print(f"{args.tasks} tasks enqueued in {time.monotonic() - started:.1f} s")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "contextkb", "worker", "-l", "WARNING",
         "--concurrency=2", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Timed from the first task taken to the last, so the worker's start-up is left out.
        while len(list(queue_dir.iterdir())) >= args.tasks:
            time.sleep(0.01)
        started = time.monotonic()
        while any(queue_dir.iterdir()):
            time.sleep(0.05)
        took = time.monotonic() - started
        print(f"drained in {took:.1f} s ({args.tasks / took:.0f} tasks/s, "
              f"load average {os.getloadavg()[0]:.1f})")  # fmt: skip

        record = Record.objects.active().first()
        if record is None:
            print("no record to embed: run `make seed` first")
            return
        from django.utils import timezone

        payload = {"created_at": timezone.now().isoformat(), "channel": "api",
                   "operation": "context", "tool": "bench", "query": "q", "results": []}  # fmt: skip
        for _ in range(args.usage_backlog):
            tasks.log_context_request.apply_async(args=(payload,))
        RecordEmbedding.objects.filter(record=record).delete()
        started = time.monotonic()
        tasks.embed_record.delay(record.pk)
        while not RecordEmbedding.objects.filter(record=record).exists():
            time.sleep(0.05)
        print(f"embedding behind {args.usage_backlog} usage-log tasks arrived in "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(60)
        with app.connection_for_write() as conn:
            for q in app.conf.task_queues:
                conn.default_channel.queue_purge(q.name)


if __name__ == "__main__":
    main()

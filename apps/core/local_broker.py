"""The local broker (`CELERY_BROKER_URL=filesystem://`): kombu's filesystem transport, with a
faster way to take the next message.

kombu lists and sorts the whole queue folder for every message it takes, then moves the file to
the system temp folder (a copy when that is another file system): with a backlog of a few
thousand messages a worker took about 2 per second. Here one listing of the folder is kept and
shared by every queue (the worker reads two, in turn), consumed in order; a message is claimed
by renaming it inside the broker folder (atomic: of two workers only one gets it). The folder is
listed again when the asked-for queue's part of the listing runs out, but while other queues
still have listed messages, at most every `RELIST_SECONDS` (an empty usage queue would
otherwise have the whole folder listed for every message of the default queue). A claimed
file, once read, is deleted by a background thread (an unlink costs milliseconds on a loaded
disk). Messages are written exactly as kombu writes them, so both read the same folders.
"""

from __future__ import annotations

import logging
import os
import queue as stdlib_queue
import threading
import time
from collections import deque

from kombu.transport import filesystem
from kombu.transport.filesystem import LOCK_EX, lock, unlock
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

logger = logging.getLogger(__name__)

# While other queues still have listed messages, an empty queue's folder is listed again at most
# this often: a message sent to it then waits at most this long.
RELIST_SECONDS = 0.05


class _Deleter:
    """Deletes consumed message files off the consuming thread."""

    def __init__(self) -> None:
        self._paths: stdlib_queue.SimpleQueue[str | None] = stdlib_queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="local-broker-delete", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (path := self._paths.get()) is not None:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            except OSError:
                logger.warning("Could not delete consumed message %s", path, exc_info=True)

    def delete(self, path: str) -> None:
        self._paths.put(path)

    def close(self) -> None:
        """Wait for the deletions asked for so far."""
        self._paths.put(None)
        self._thread.join(timeout=30)


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending: dict[str, deque[str]] = {}
        self._listed_at = 0.0
        self._claimed_dir: str | None = None
        self._deleter: _Deleter | None = None

    def _relist(self) -> None:
        """One listing of the folder, split by queue, each part in order."""
        by_queue: dict[str, list[str]] = {}
        for name in os.listdir(self.data_folder_in):
            rest = name.partition(".")[2]
            if rest.endswith(".msg"):
                by_queue.setdefault(rest[:-4], []).append(name)
        self._pending = {q: deque(sorted(names)) for q, names in by_queue.items()}
        self._listed_at = time.monotonic()

    def _get(self, queue):
        pending = self._pending.get(queue)
        if not pending:
            busy = any(self._pending.values())
            if not busy or time.monotonic() - self._listed_at >= RELIST_SECONDS:
                self._relist()
            pending = self._pending.get(queue)
            if not pending:
                raise Empty()
        if self._claimed_dir is None:
            self._claimed_dir = os.path.join(self.processed_folder, "claimed")
            os.makedirs(self._claimed_dir, exist_ok=True)
        claimed_dir = self._claimed_dir
        while pending:
            name = pending.popleft()
            source = os.path.join(self.data_folder_in, name)
            try:
                if os.path.getsize(source) == 0:
                    continue  # still being written; the next listing finds it again
                claimed = os.path.join(claimed_dir, f"{os.getpid()}-{name}")
                os.rename(source, claimed)
            except FileNotFoundError:
                continue  # another consumer took it
            with open(claimed, "rb") as f:
                # The writer holds this lock while it writes (kombu's _put).
                lock(f, LOCK_EX)
                payload = f.read()
                unlock(f)
            if not payload:
                os.rename(claimed, source)  # not written yet after all: leave it for later
                continue
            if self.store_processed:
                os.rename(claimed, os.path.join(self.processed_folder, name))
            else:
                if self._deleter is None:
                    self._deleter = _Deleter()
                self._deleter.delete(claimed)
            try:
                return loads(bytes_to_str(payload))
            except ValueError:
                # A damaged message must not stop the worker: keep it aside and say so.
                bad = os.path.join(self.processed_folder, "unreadable")
                os.makedirs(bad, exist_ok=True)
                with open(os.path.join(bad, name), "wb") as f:
                    f.write(payload)
                logger.error("Unreadable message %s moved to %s", name, bad)
        raise Empty()

    def close(self):
        super().close()
        if self._deleter is not None:
            self._deleter.close()
            self._deleter = None


class Transport(filesystem.Transport):
    Channel = Channel

"""The local broker (apps/core/local_broker.py): each message taken once, and a file
still being written is left for later rather than read empty (which stopped the worker)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from kombu import Connection
from kombu.transport.virtual import Empty

from apps.core.local_broker import Transport


@pytest.fixture
def folders(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }


def _drain(folders, name="jobs") -> list[int]:
    got = []
    with Connection("filesystem://", transport=Transport, transport_options=folders) as conn:
        queue = conn.SimpleQueue(name)
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                return got
            got.append(message.payload["n"])
            message.ack()


def test_every_message_is_taken_exactly_once_by_two_consumers(folders):
    with Connection("filesystem://", transport=Transport, transport_options=folders) as conn:
        queue = conn.SimpleQueue("jobs")
        for n in range(300):
            queue.put({"n": n})
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(lambda _: _drain(folders), range(2))
    assert sorted(a + b) == list(range(300))


def test_a_file_not_yet_written_is_left_for_later_not_read_empty(folders, tmp_path):
    with Connection("filesystem://", transport=Transport, transport_options=folders) as conn:
        conn.SimpleQueue("later").put({"n": 1})
    # What a publisher's file looks like between its creation and its write.
    half = tmp_path / "queue" / "0_00000000-0000-0000-0000-000000000000.later.msg"
    half.write_bytes(b"")
    assert _drain(folders, "later") == [1]
    assert half.exists()  # still there for the next listing
    # Once written, it is delivered.
    with Connection("filesystem://", transport=Transport, transport_options=folders) as conn:
        conn.SimpleQueue("later").put({"n": 2})
    message = next(p for p in (tmp_path / "queue").iterdir() if p.name != half.name)
    half.write_bytes(message.read_bytes())
    message.unlink()
    assert _drain(folders, "later") == [2]


def test_an_empty_queue_beside_a_backlog_gets_a_new_message_promptly(folders, tmp_path):
    """The worker reads two queues in turn; one listing of the folder serves both. A message
    sent to the empty one while the other has a backlog is taken within RELIST_SECONDS, and
    every consumed file is deleted (off the consuming thread, waited for on close)."""
    import time

    from apps.core.local_broker import RELIST_SECONDS

    with Connection("filesystem://", transport=Transport, transport_options=folders) as conn:
        channel = conn.default_channel
        for n in range(200):
            channel._put("busy", {"n": n})
        with pytest.raises(Empty):
            channel._get("idle")
        got = [channel._get("busy")["n"] for _ in range(50)]
        channel._put("idle", {"n": "late"})
        sent = time.monotonic()
        while True:
            try:
                late = channel._get("idle")
                break
            except Empty:
                got.append(channel._get("busy")["n"])
        assert late == {"n": "late"}
        assert time.monotonic() - sent < RELIST_SECONDS + 1.0
        while True:
            try:
                got.append(channel._get("busy")["n"])
            except Empty:
                break
    assert sorted(got) == list(range(200))  # each once
    assert list((tmp_path / "queue").iterdir()) == []
    assert list((tmp_path / "processed" / "claimed").iterdir()) == []  # deleted on close

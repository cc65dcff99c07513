"""No lost updates: 20 writers racing on one record through the API of a live server."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg

WRITERS = 20
ATTEMPTS = 5


def test_every_write_lands_as_its_own_revision_or_gets_412(
    live_server_on_private_db, private_database
):
    server = live_server_on_private_db
    path = f"/api/v1/records/{server.record_id}/"
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> list[tuple[int, str]]:
        results = []
        with server.client() as http:
            start.wait()
            for attempt in range(ATTEMPTS):
                read = http.get(path)
                assert read.status_code == 200, read.text
                body = f"writer {n} attempt {attempt}"
                wrote = http.patch(
                    path, json={"body": body}, headers={"If-Match": read.headers["ETag"]}
                )
                results.append((wrote.status_code, body))
        return results

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        outcomes = [item for chunk in pool.map(writer, range(WRITERS)) for item in chunk]

    statuses = Counter(status for status, _ in outcomes)
    assert set(statuses) <= {200, 412}, statuses
    landed = [body for status, body in outcomes if status == 200]
    assert len(landed) >= 1 and statuses[412] >= 1  # there really was contention

    with psycopg.connect(private_database.url) as conn:
        version = conn.execute(
            "SELECT version FROM records_record WHERE id = %s", [server.record_id]
        ).fetchone()[0]
        bodies = [
            row[0]
            for row in conn.execute(
                "SELECT snapshot->>'body' FROM records_revision "
                "WHERE record_id = %s AND action = 'update' ORDER BY number",
                [server.record_id],
            )
        ]
    # One revision per successful write, each with that writer's own text, none twice.
    assert sorted(bodies) == sorted(landed)
    assert version == 1 + len(landed)

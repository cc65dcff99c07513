"""Per-space keys are allocated without races, even with many concurrent creators."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from apps.records import services
from apps.records.models import Record


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_distinct_consecutive_keys(space, owner):
    def create(i: int) -> str:
        try:
            record = services.record_create(
                space=space, kind="decision", title=f"Concurrent {i}", actor=owner
            )
            return record.key
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(create, range(24)))
    assert sorted(keys, key=lambda k: int(k.split("-")[1])) == [f"DEC-{n}" for n in range(1, 25)]
    assert Record.objects.filter(space=space).count() == 24
    # Every record got its own first revision.
    assert sorted(Record.objects.values_list("revisions__number", flat=True)) == [1] * 24

"""Benchmark: import the whole ADR corpus (438 ADRs, 11 repositories), then embed it.

    .venv/bin/python bench/import_corpus.py [--runs 1] [--keep]

Runs in a throwaway database (DATABASE_TEST_NAME, default bench_ckb_interchange), never the
development one. Celery messages go to an in-memory broker, so nothing leaks to a shared queue;
the embeddings are then computed by calling the `embed_record` task body once per record, in this
process: exactly the work one worker does after the import commits. Prints the figures that go
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DATABASE_TEST_NAME", "bench_ckb_interchange")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="Import the corpus this many times.")
    parser.add_argument("--keep", action="store_true", help="Keep the bench database.")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    corpus = Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"
    old_name = connection.settings_dict["NAME"]
    t0 = time.perf_counter()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    print(f"bench database ready in {time.perf_counter() - t0:.1f} s")
    try:
        run(corpus, args.runs)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(corpus: Path, runs: int) -> None:
    from django.conf import settings

    from apps.accounts.models import Membership
    from apps.interchange import services, sources
    from apps.records.models import Link, Record
    from apps.retrieval import providers
    from apps.retrieval.services import embed_records
    from apps.retrieval.tasks import SWEEP_BATCH, embed_record
    from tests.factories import MembershipFactory, SpaceFactory, UserFactory

    user = UserFactory(username="bench", email="bench@example.com")
    folders = sorted(p for p in corpus.iterdir() if p.is_dir())
    for attempt in range(1, runs + 1):
        spaces = []
        t_read = t_import = 0.0
        for folder in folders:
            space = SpaceFactory(
                slug=f"r{attempt}-{folder.name.lower().replace('_', '-').replace('.', '-')}"[:60]
            )
            MembershipFactory(space=space, user=user, role=Membership.Role.EDITOR)
            spaces.append(space)
            started = time.perf_counter()
            files = sources.read_folder(folder)
            t_read += time.perf_counter() - started
            started = time.perf_counter()
            services.import_files(space=space, files=files, actor=user)
            t_import += time.perf_counter() - started
        records = list(Record.objects.filter(space__in=spaces).values_list("pk", flat=True))
        links = Link.objects.filter(source__space__in=spaces).count()
        print(
            f"run {attempt}: read {t_read:.2f} s, import {t_import:.2f} s "
            f"({len(records)} records, {links} links; {len(records) / t_import:.0f} records/s)"
        )
        provider = settings.CONTEXTKB_EMBEDDINGS_PROVIDER
        if providers.current_model_key() is None:
            print(f"embeddings: provider {provider!r} is off; nothing to embed")
            continue
        started = time.perf_counter()
        for pk in records:
            embed_record.run(pk)
        t_embed = time.perf_counter() - started
        print(
            f"run {attempt}: embeddings ({provider}, one embed_record task per record, one "
            f"worker) {t_embed:.2f} s; import + embeddings {t_import + t_embed:.2f} s"
        )
        started = time.perf_counter()
        for start in range(0, len(records), SWEEP_BATCH):
            embed_records(record_ids=records[start : start + SWEEP_BATCH], force=True)
        t_batch = time.perf_counter() - started
        print(
            f"run {attempt}: embeddings again, batched {SWEEP_BATCH} at a time (the embed_missing "
            f"sweep) {t_batch:.2f} s; import + batched embeddings {t_import + t_batch:.2f} s"
        )
        # Re-importing the same folders: everything matched, nothing changes.
        started = time.perf_counter()
        for space, folder in zip(spaces, folders, strict=True):
            services.import_files(space=space, files=sources.read_folder(folder), actor=user)
        print(f"run {attempt}: re-import (all unchanged) {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()

"""Latency of web search: the space page with a query, at 100,000 records in one space.

    DATABASE_URL=postgres://…/ckb_bench .venv/bin/python bench/web_search.py [--records 100000]
        [--requests 400]

Uses the database and loader of `bench/context_load.py` (its own database; a second run reuses
the loaded records). Signs in as the bench user and requests `/s/bench-100k/?q=…` through
Django's full stack in this process (session, page selectors, the retrieval engine, highlighting,
template rendering; no HTTP server), one at a time, with the context benchmark's varied queries
(ADR titles, three title words, "how do we …" questions, sentences). Reports wall-clock p50, p95
and p99 per request, and the SQL time and query count per request, for the whole page and for
the search alone (`apps.web.selectors.space_records` + `apps.retrieval.selectors.highlights`).
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="records in the space")
    parser.add_argument("--requests", type=int, default=400, help="measured page requests")
    return parser


# --help and bad options are answered before Django starts (which would start a database).
ARGS = build_parser().parse_args() if __name__ == "__main__" else None
sys.path.insert(0, str(Path(__file__).resolve().parent))

import context_load  # noqa: E402  (sets up Django on the benchmark database)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.retrieval import selectors as retrieval_selectors  # noqa: E402
from apps.web import selectors as web_selectors  # noqa: E402


def main(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    # The context benchmark's seed, so both load the same records.
    space, _ = context_load.load(args.records, random.Random(42))
    rng = random.Random(7)
    # Pages link their CSS through the manifest storage in production, which needs collectstatic;
    # here, as in the tests, straight from the finders (the cost is the same either way).
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    user = User.objects.get(username="bench")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    url = f"/s/{space.slug}/"
    queries = [q["q"] for q in context_load.make_queries(args.requests + 40, rng)]
    warm, measured = queries[:40], queries[40:]

    sql_ms: list[float] = []
    counted = [0]

    def timed(execute, query, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql_ms.append((time.perf_counter() - t0) * 1000)
            counted[0] += 1

    for q in warm:
        assert client.get(url, {"q": q}).status_code == 200
    page_ms, page_sql, page_queries, search_ms, found = [], [], [], [], []
    for q in measured:
        sql_ms.clear()
        counted[0] = 0
        with connection.execute_wrapper(timed):
            t0 = time.perf_counter()
            response = client.get(url, {"q": q})
            page_ms.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
        page_sql.append(sum(sql_ms))
        page_queries.append(counted[0])
        # The search alone: the ranked records and their marked titles and excerpts.
        filters = web_selectors.RecordFilters(q=q)
        t0 = time.perf_counter()
        records = web_selectors.space_records(
            principal=user, space=space, filters=filters, user=user
        )
        first_page = list(records[:50])
        retrieval_selectors.highlights(record_ids=[r.pk for r in first_page], query=q)
        search_ms.append((time.perf_counter() - t0) * 1000)
        found.append(len(records))

    def line(name, values):
        return (
            f"{name:<28} p50 {context_load.percentile(values, 50):7.1f}  "
            f"p95 {context_load.percentile(values, 95):7.1f}  "
            f"p99 {context_load.percentile(values, 99):7.1f}  ms"
        )

    print(f"\n{len(measured)} searches over {args.records:,} records (in process, one at a time)")
    print(line("page, wall clock", page_ms))
    print(line("page, SQL time", page_sql))
    print(line("search + highlights alone", search_ms))
    print(
        f"queries per page: {statistics.mean(page_queries):.1f} (max {max(page_queries)}); "
        f"records found per search: median {statistics.median(found):.0f}, "
        f"none for {sum(1 for n in found if n == 0)}"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(ARGS)

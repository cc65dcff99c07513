"""Load benchmark of /api/v1/context/ with 100,000 records in one space.

    DATABASE_URL=postgres://…/ckb_bench .venv/bin/python bench/context_load.py [--records 100000]
        [--requests 2000] [--load-only | --in-process [--cprofile FILE]]

Uses its own database (DATABASE_URL, migrated by the script) so nothing touches your data; a
second run reuses the loaded records (only what is missing is added). Loads N synthetic
records (sentences and titles drawn from ../shared/corpora/adr) with bulk_create, one
set-based UPDATE for the search vectors (the same weights as
apps.records.services.common.refresh_search), embeddings in batches (the HNSW index built after)
and their token counts; starts gunicorn with 2 workers; warms up; then sends varied context
requests (task text, some with file paths) one at a time and reports p50/p95/p99, then the
throughput with 4 client threads of the context endpoint and of /healthz (the ceiling).
`--in-process` skips the server and reports CPU time, SQL queries and SQL time per request
through Django's full stack in this process: the figures to compare changes on a busy machine.
"""

import argparse
import datetime as dt
import logging
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")
os.environ.setdefault("CONTEXTKB_VAR_DIR", str(Path(tempfile.gettempdir()) / "ckb-bench-var"))
# Measure the endpoint, not the rate limiter's refusals (in this process and in gunicorn).
os.environ.setdefault("API_THROTTLE_TOKEN", "1000000/minute")
os.environ.setdefault("API_THROTTLE_IP", "1000000/minute")

# One thread each for the embedding model's and the tokenizer's native code: on a 2-core machine
# shared with other jobs their thread pools oversubscribe the cores (measured under load: 1,000
# records embedded in 20.6 s with the pools, 7.5 s without; token counts 6.1 s and 1.5 s).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The usage log's tasks go to a queue of their own on whichever broker is configured, purged at
# the end: never to the `celery` queue a `make run` worker (or production's) would then drain.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"contextkb-bench-{os.getpid()}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="records in the space")
    parser.add_argument("--requests", type=int, default=2000, help="measured context requests")
    parser.add_argument("--port", type=int, default=8765, help="port for gunicorn")
    parser.add_argument(
        "--load-only", action="store_true", help="load the records (if needed) and stop"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no server: time requests through Django in this process (CPU, SQL per request)",
    )
    parser.add_argument("--cprofile", metavar="FILE", help="with --in-process: a cProfile dump")
    return parser


# --help and bad options are answered before Django starts (which would start a database).
ARGS = build_parser().parse_args() if __name__ == "__main__" else None
if not os.environ.get("DATABASE_URL"):
    sys.exit("Set DATABASE_URL to a database of its own for the benchmark (it is filled).")

import django  # noqa: E402

django.setup()
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

import haystack  # noqa: E402
import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.utils import timezone  # noqa: E402
from haystack import KINDS  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from apps.accounts.models import ApiToken, Membership, Space, User  # noqa: E402
from apps.records import anchors  # noqa: E402
from apps.records.models import Record  # noqa: E402
from apps.retrieval import lexical, providers  # noqa: E402
from apps.retrieval.bundle import counts_stamp, text_token_counts  # noqa: E402
from apps.retrieval.models import RecordEmbedding  # noqa: E402
from apps.retrieval.models import SpaceTextStats as RecordStats  # noqa: E402
from apps.retrieval.services import embedding_text, ensure_vector_index  # noqa: E402

CORPUS = Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"
SLUG = "bench-100k"


class _Steps:
    """Wall time of each loading step, printed as it ends and summed at the end."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.times: list[tuple[str, float]] = []

    def done(self, step: str) -> None:
        now = time.perf_counter()
        self.times.append((step, now - self.last))
        print(f"  {step}: {now - self.last:.1f}s", flush=True)
        self.last = now

    def summary(self) -> str:
        parts = ", ".join(f"{step} {seconds:.0f}s" for step, seconds in self.times)
        return f"{time.perf_counter() - self.started:.0f}s ({parts})"


# Records a chunk handed to the embedding process (vectors and token counts come back per chunk).
EMBED_CHUNK = 2000
# Embedding processes: two, so that once the database work is done both cores embed (while it
# runs, they share the cores with PostgreSQL).
EMBED_WORKERS = 2
# The text fields the embedding and the token counts read.
_TEXT_FIELDS = ("key", "title", "summary", "tags", "body")


def _embed_chunk(rows: list[tuple]) -> tuple[list[list[float]], list[dict]]:
    """In the embedding process: the vectors and token counts of one chunk of record texts
    (the same functions the embedding task uses)."""
    records = [Record(**dict(zip(_TEXT_FIELDS, row, strict=True))) for row in rows]
    vectors = providers.get_provider().embed([embedding_text(r) for r in records])
    return vectors, text_token_counts(records)


def _generate(space, user, n: int, existing: int, rng: random.Random) -> tuple[list, dict]:
    """Records existing+1 … n of the bench space (unsaved; the same draws from `rng` whatever
    the loading method, so every load of a size holds the same texts), and the key counters."""
    now = timezone.now()
    counters = {k: Record.objects.filter(space=space, kind=k).count() for k, _, _ in KINDS}
    records = [
        Record(
            space=space,
            kind=d.kind,
            number=d.number,
            key=d.key,
            title=d.title,
            summary=d.summary,
            body=d.body,
            status="accepted",
            anchors=d.anchors,
            anchor_patterns=anchors.compile_anchors(d.anchors),
            next_review_at=now + dt.timedelta(days=d.review_in_days),
            freshness=d.freshness,
            created_at=now,
            updated_at=now,
            created_by=user,
            updated_by=user,
        )
        for d in haystack.draws(n - existing, rng, CORPUS, counters)
    ]
    return records, counters


# The record's search vector, as apps.records.services.common.refresh_search computes it.
_SEARCH_VECTOR = """setweight(to_tsvector('simple', key), 'A')
    || setweight(to_tsvector('english', title), 'A')
    || setweight(to_tsvector('english', summary), 'B')
    || setweight(to_tsvector('english', array_to_string(tags, ' ')), 'B')
    || setweight(to_tsvector('english', body), 'C')"""


def _insert_records(records: list) -> None:
    """Write the records with ids from the table's sequence: COPY into a temporary table without
    indexes, then one INSERT … SELECT that computes the search vectors, so each row is written
    once (bulk_create and then an UPDATE of the vectors wrote every row and its 20 indexes
    twice)."""
    fields = [f for f in Record._meta.concrete_fields if f.column != "search_vector"]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('records_record', 'id'))"
            " FROM generate_series(1, %s)",
            [len(records)],
        )
        for record, (pk,) in zip(records, cursor.fetchall(), strict=True):
            record.pk = pk
        cursor.execute(
            "CREATE TEMP TABLE bench_record_stage (LIKE records_record INCLUDING DEFAULTS)"
        )
        with cursor.copy(f"COPY bench_record_stage ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(
                    [f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields]
                )
        rebuild = _drop_record_indexes(cursor) if len(records) >= INDEX_REBUILD_MIN else []
        cursor.execute(
            f"INSERT INTO records_record ({columns}, search_vector)"
            f" SELECT {columns}, {_SEARCH_VECTOR} FROM bench_record_stage ORDER BY id"
        )
        cursor.execute("DROP TABLE bench_record_stage")
        if rebuild:
            # Deferred foreign-key checks pending in the transaction would block CREATE INDEX.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for statement in rebuild:
            cursor.execute(statement)


# From this many new records, the records table's secondary indexes (not those of its
# constraints) are dropped before the insert and built again after it: one sorted build each
# instead of an insertion per row (the full-text GIN index above all).
INDEX_REBUILD_MIN = 20_000


def _drop_record_indexes(cursor) -> list[str]:
    """Drop the records table's indexes that back no constraint (inside the load's
    transaction); return the statements that create them again."""
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    cursor.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = 'records_record'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _name, definition in indexes]


def _write_embeddings(results, ids: list[int], model_key: str, now) -> None:
    """COPY each chunk's vectors and token counts (`results`, in record order) as it comes."""
    done = 0
    with connection.cursor() as cursor:
        for vectors, counts in results:
            with cursor.copy(
                "COPY retrieval_recordembedding (record_id, model_key, dimensions, vector,"
                " content_hash, updated_at, token_counts) FROM STDIN"
            ) as copy:
                for pk, vector, count in zip(ids[done:], vectors, counts, strict=False):
                    copy.write_row(
                        [pk, model_key, len(vector), str(vector), "bench", now, Jsonb(count)]
                    )
            done += len(vectors)
            print(f"    {done} embedded", flush=True)


def _embed_async(records: list, pool) -> list:
    """Hand the records' texts to the embedding process in chunks; their futures, in order."""
    rows = [tuple(getattr(r, f) for f in _TEXT_FIELDS) for r in records]
    return [
        pool.submit(_embed_chunk, rows[start : start + EMBED_CHUNK])
        for start in range(0, len(rows), EMBED_CHUNK)
    ]


def load(n: int, rng: random.Random) -> tuple[Space, str]:
    """Fill the bench space to `n` records with their search vectors, BM25 postings, vectors and
    token counts. The vectors and counts are computed in other processes while this one writes
    the records and postings (on two cores the Python and the PostgreSQL work overlap)."""
    user, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    space, _ = Space.objects.get_or_create(slug=SLUG, defaults={"name": "Bench 100k"})
    Membership.objects.get_or_create(user=user, space=space, defaults={"role": "editor"})
    existing = Record.objects.filter(space=space).count()
    steps = _Steps()
    records, counters = _generate(space, user, n, existing, rng)
    provider = providers.get_provider()
    # Nothing of this process's database connection may reach the forked process.
    connections.close_all()
    workers = min(EMBED_WORKERS, os.cpu_count() or 1)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        chunks = _embed_async(records, pool)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            _insert_records(records)
            with connection.cursor() as cursor:
                for kind, _, _ in KINDS:
                    cursor.execute(
                        "INSERT INTO records_recordkeycounter (space_id, kind, last_number) "
                        "VALUES (%s, %s, %s) ON CONFLICT (space_id, kind) "
                        "DO UPDATE SET last_number = EXCLUDED.last_number",
                        [space.pk, kind, counters[kind]],
                    )
        steps.done(f"records with search vectors ({len(records)} new)")
        # The BM25 postings and statistics (apps.retrieval.lexical), set-based, the postings'
        # indexes built after the rows are written.
        if RecordStats.objects.filter(space=space).values_list("docs", flat=True).first() != n:
            lexical.rebuild([space.pk], bulk=True)
            steps.done("BM25 postings")
        _store_vectors(space, provider, records, chunks, steps)
    finally:
        pool.shutdown(cancel_futures=True)
    _count_older_vectors(space, steps)
    ensure_vector_index(provider.dimensions)
    steps.done("HNSW index")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE records_record")
        cursor.execute("VACUUM ANALYZE retrieval_recordembedding")
        cursor.execute("VACUUM ANALYZE retrieval_termposting")
        cursor.execute("VACUUM ANALYZE retrieval_spaceterm")
    steps.done("vacuum analyze")
    token = ApiToken.generate()
    ApiToken.objects.create(
        user=user, name="bench", token_hash=ApiToken.hash(token), prefix=token[:12], scope="read"
    )
    print(
        f"loaded {Record.objects.filter(space=space).count()} records in {steps.summary()}",
        flush=True,
    )
    return space, token


def _store_vectors(space, provider, records: list, chunks: list, steps: _Steps) -> None:
    """The new records' vectors from the embedding process, then older records of the space
    without a vector of this model (a load interrupted before its vectors were written)."""
    now = timezone.now()
    # Vectors of another model are replaced.
    RecordEmbedding.objects.filter(record__space=space).exclude(
        model_key=provider.model_key
    ).delete()
    older = list(
        Record.objects.filter(space=space, embedding__isnull=True)
        .exclude(pk__in=[r.pk for r in records])
        .only(*_TEXT_FIELDS)
        .order_by("pk")
    )
    if len(records) + len(older) > 10_000:
        # Building the HNSW index once after the load is much faster than growing it row by
        # row; ensure_vector_index() recreates it with the migration's definition.
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS embedding_hnsw_{provider.dimensions}")
    print(f"  storing the vectors of {len(records) + len(older)} records…", flush=True)
    results = (future.result() for future in chunks)
    _write_embeddings(results, [r.pk for r in records], provider.model_key, now)
    for start in range(0, len(older), EMBED_CHUNK):
        chunk = older[start : start + EMBED_CHUNK]
        rows = [tuple(getattr(r, f) for f in _TEXT_FIELDS) for r in chunk]
        _write_embeddings([_embed_chunk(rows)], [r.pk for r in chunk], provider.model_key, now)
    steps.done(f"embeddings and token counts ({len(records) + len(older)})")


def _count_older_vectors(space, steps: _Steps) -> None:
    """Token counts of vectors stored without them (older loads, another tokenizer)."""
    uncounted = list(
        Record.objects.filter(space=space)
        .filter(
            Q(embedding__token_counts__isnull=True)
            | ~Q(embedding__token_counts__contains={"method": counts_stamp()})
        )
        .only("id", "key", "title", "summary", "body")
        .order_by("pk")
    )
    for start in range(0, len(uncounted), 2000):
        chunk = uncounted[start : start + 2000]
        RecordEmbedding.objects.bulk_update(
            [
                RecordEmbedding(record=r, token_counts=counts)
                for r, counts in zip(chunk, text_token_counts(chunk), strict=True)
            ],
            ["token_counts"],
            batch_size=1000,
        )
        print(f"    {start + len(chunk)} counted", flush=True)
    if uncounted:
        steps.done(f"token counts of older vectors ({len(uncounted)})")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def make_queries(n: int, rng: random.Random) -> list[dict]:
    """Varied requests: a quarter ADR titles, a quarter 3 random title words, a quarter
    "how do we …" questions, a quarter sentences; one in five also sends a file path."""
    sentences, titles = haystack.corpus_text(CORPUS)
    words = [w for t in titles for w in re.findall(r"[a-zA-Z]{4,}", t)]
    queries = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            q = rng.choice(titles)
        elif kind == 1:
            q = " ".join(rng.sample(words, 3))
        elif kind == 2:
            q = "how do we " + " ".join(rng.sample(words, 4)).lower()
        else:
            q = rng.choice(sentences)[:120]
        params = {"q": q, "max_tokens": 4000}
        if i % 5 == 0:
            params["paths"] = f"services/{rng.choice(haystack.AREAS)}/handler.py"
        queries.append(params)
    return queries


def profile_in_process(token: str, queries: list[dict], profile_file: str | None) -> None:
    """Requests through Django's full stack in this process (no HTTP server): CPU time, SQL
    queries and SQL time per request. For comparing changes on a busy machine, where wall-clock
    latency is noise; `--cprofile FILE` also writes a cProfile dump of the measured requests."""
    import cProfile

    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT="context-load-bench")
    sql: list[float] = []

    def timed(execute, query, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql.append((time.perf_counter() - t0) * 1000)

    for params in queries[:50]:  # warm-up: models, caches, connection
        assert client.get("/api/v1/context/", params).status_code == 200
    cpu, wall, counts, sql_ms = [], [], [], []
    profiler = cProfile.Profile() if profile_file else None
    with connection.execute_wrapper(timed):
        for params in queries:
            sql.clear()
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            response = client.get("/api/v1/context/", params)
            if profiler:
                profiler.disable()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            assert response.status_code == 200, response.content[:300]
            counts.append(len(sql))
            sql_ms.append(sum(sql))
    print(
        f"in-process: {len(cpu)} requests; CPU ms/request p50 {percentile(cpu, 50):.1f} "
        f"mean {statistics.mean(cpu):.1f}; wall p50 {percentile(wall, 50):.1f} "
        f"p95 {percentile(wall, 95):.1f}; SQL queries/request max {max(counts)} "
        f"mean {statistics.mean(counts):.1f}; SQL ms/request p50 {percentile(sql_ms, 50):.1f} "
        f"mean {statistics.mean(sql_ms):.1f}"
    )
    if profiler:
        profiler.dump_stats(profile_file)
        print(f"cProfile dump: {profile_file} (python -m pstats {profile_file})")


def main(args: argparse.Namespace) -> None:
    rng = random.Random(42)
    call_command("migrate", verbosity=0)
    _space, token = load(args.records, rng)
    if args.load_only:
        return
    # Their own seed: every run asks the same questions, whether or not it loaded records.
    queries = make_queries(args.requests, random.Random(7))
    if args.in_process:
        profile_in_process(token, queries, args.cprofile)
        return

    env = dict(
        os.environ,
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        DJANGO_SECURE_SSL_REDIRECT="false",
        # Measure the endpoint, not the rate limiter's refusals.
        API_THROTTLE_TOKEN="1000000/minute",
        API_THROTTLE_IP="1000000/minute",
    )
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "contextkb.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{args.port}"
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "context-load-bench"}
    try:
        client = httpx.Client(base_url=base, headers=headers, timeout=30)
        for _ in range(100):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for params in queries[:100]:  # warm-up: both workers load models and caches
            assert client.get("/api/v1/context/", params=params).status_code == 200
        latencies, items, tokens_used = [], [], []
        started = time.perf_counter()
        for params in queries:
            t0 = time.perf_counter()
            response = client.get("/api/v1/context/", params=params)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text[:300]
            body = response.json()
            items.append(len(body["items"]))
            tokens_used.append(body["tokens_used"])
        elapsed = time.perf_counter() - started
        print(
            f"context: {len(latencies)} sequential requests, p50 {percentile(latencies, 50):.1f} ms,"
            f" p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms,"
            f" mean {statistics.mean(latencies):.1f} ms, {len(latencies) / elapsed:.0f} req/s;"
            f" items/request {statistics.mean(items):.1f},"
            f" tokens_used mean {statistics.mean(tokens_used):.0f}"
        )

        def burst(path, params_list, workers):
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:

                def one(p):
                    return c.get(path, params=p).status_code

                t0 = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    codes = list(pool.map(one, params_list))
                return len(codes) / (time.perf_counter() - t0), codes

        rate, codes = burst("/api/v1/context/", queries[:600], 4)
        print(
            f"context throughput (4 client threads): {rate:.0f} req/s, "
            f"{sum(c == 200 for c in codes)}/{len(codes)} OK"
        )
        rate, codes = burst("/healthz", [{}] * 3000, 4)
        print(
            f"/healthz throughput (ceiling, 4 client threads): {rate:.0f} req/s, "
            f"{sum(c == 200 for c in codes)}/{len(codes)} OK"
        )
    finally:
        server.terminate()
        server.wait(10)


def purge_usage_log_queue() -> None:
    """Drop the usage-log tasks this run enqueued (nobody consumes the bench's queue)."""
    from contextkb.celery import app

    # The usage log hands entries over on a background thread: let the last ones land first.
    time.sleep(1)
    with app.connection_for_write() as conn:
        dropped = conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    print(
        f"usage-log tasks dropped from queue {settings.CELERY_TASK_DEFAULT_QUEUE}: {dropped or 0}"
    )


if __name__ == "__main__":
    try:
        main(ARGS)
    finally:
        purge_usage_log_queue()

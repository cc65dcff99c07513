"""Staleness sweep benchmark: 1,000,000 records, set-based SQL.

Creates (or reuses) a private database `bench_ckb_sweep` on the configured PostgreSQL server,
migrates it, loads N records with generate_series (10 spaces, 200 owners of whom 5 are
deactivated, mixed kinds and review dates, 1% with a past valid-until, 2% with an open suspect
reason), then times:

  1. a full sweep on the fresh load (a third of the rows change state: the worst case),
  2. an hourly sweep right after (nothing to change),
  3. an hourly sweep one day later (the rows that crossed a boundary in a day),
  4. an hourly sweep one hour after that,
  5. the nightly full sweep in steady state,
  6. the daily health snapshot,
  7. the reads around it: the hourly digest planner's two queries, one owner's ranked digest
     (one record in 200), one space admin's escalation list,
     and the health dashboard's figures for one space and for all ten,
  8. a drift report of 20 changed paths (each path's anchor is shared by 2,000 records, so it
     marks 40,000 records suspect), and one of 20 paths no record covers (the matching cost
     alone).

Usage: .venv/bin/python bench/sweep_bench.py [--records 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

BENCH_DB = "bench_ckb_sweep"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["CONTEXTKB_DATABASE_NAME"] = BENCH_DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def create_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    conninfo = {
        "dbname": "postgres",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<58} {seconds:7.2f} s   {result}")
    return seconds, result


def load(n: int) -> None:
    from django.db import connection

    now = dt.datetime.now(dt.UTC)
    with connection.cursor() as c:
        c.execute(
            "TRUNCATE records_record, records_suspectreason, reminders_healthsnapshot, "
            "reminders_driftreport, accounts_membership, accounts_space, accounts_user "
            "RESTART IDENTITY CASCADE"
        )
        c.execute(
            """
            INSERT INTO accounts_space (slug, name, description, review_policy, due_window_days,
                                        escalation_days, created_at)
            SELECT 'space-' || i, 'Space ' || i, '', '{}'::jsonb, 14, 30, %s
            FROM generate_series(1, 10) AS i
            """,
            [now],
        )
        c.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name,
                email, is_staff, is_active, date_joined, digest_frequency)
            SELECT '!', false, 'user' || i, 'User', '' || i, 'user' || i || '@example.com',
                   false, i > 5, %s, 'daily'
            FROM generate_series(1, 200) AS i
            """,
            [now],
        )
        c.execute(
            """
            INSERT INTO accounts_membership (user_id, space_id, role, created_at)
            SELECT u.id, s.id, 'editor', %s FROM accounts_user u CROSS JOIN accounts_space s
            """,
            [now],
        )
        print(f"loading {n:,} records …", flush=True)
        start = time.perf_counter()
        c.execute(
            """
            INSERT INTO records_record (
                space_id, kind, number, key, title, summary, body, status, tags, anchors,
                anchor_patterns, reversibility, impact, decided_on, deciders, valid_until,
                source_path, version, archived_at, freshness, next_review_at, last_verified_at,
                created_at, updated_at, owner_user_id)
            SELECT
                1 + (i %% 10),
                (ARRAY['decision','constraint','intent','guardrail'])[1 + (i / 10) %% 4],
                i, 'R-' || i, 'Record ' || i, '', '', 'accepted', '{}', ARRAY['svc' || (i %% 500) || '/**'],
                ARRAY['^svc' || (i %% 500) || '(?:/.*)?$'], '', '', NULL, '',
                CASE WHEN i %% 100 = 0 THEN (%s::date - 3) ELSE NULL END,
                '', 1, NULL, 'fresh',
                %s::timestamptz + make_interval(days => (i %% 240) - 60),
                NULL, %s, %s, 1 + (i %% 200)
            FROM generate_series(1, %s) AS i
            """,
            [now.date(), now, now, now, n],
        )
        c.execute(
            """
            INSERT INTO records_suspectreason (record_id, cause, message, cause_url, details,
                                               created_at)
            SELECT id, 'linked_changed', 'bench', '', '{}'::jsonb, %s
            FROM records_record WHERE id %% 50 = 7
            """,
            [now],
        )
        print(f"loaded in {time.perf_counter() - start:.1f} s; VACUUM ANALYZE …", flush=True)
    connection.close()
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE records_record")
        c.execute("VACUUM ANALYZE records_suspectreason")


def bench_reads(now: dt.datetime) -> None:
    from django.db import connection

    from apps.accounts.models import Space, User
    from apps.reminders import selectors

    with connection.cursor() as c:
        # user6 administers every space (idempotent, so --keep runs see the same data).
        c.execute(
            "UPDATE accounts_membership SET role = 'admin' "
            "WHERE user_id = (SELECT id FROM accounts_user WHERE username = 'user6')"
        )
    owner = User.objects.get(username="user7")
    admin = User.objects.get(username="user6")
    timed(
        "plan: owners with something to review",
        lambda: len(selectors.users_with_digest_items(frequency="daily")),
    )
    timed(
        "plan: admins with something to escalate",
        lambda: len(selectors.admins_with_escalations(now=now)),
    )
    timed(
        "one owner's digest (1 in 200 records, top 25 ranked)",
        lambda: selectors.total_of(selectors.digest_items(user=owner, now=now)),
    )
    timed(
        "one admin's escalation (10 spaces, top 40 ranked)",
        lambda: selectors.total_of(selectors.escalation_items(user=admin, now=now)),
    )
    one = Space.objects.filter(slug="space-1")
    timed(
        "health dashboard figures, one space",
        lambda: selectors.health(spaces=one, now=now, coverage=False)["total"],
    )
    timed(
        "health dashboard figures, all spaces + coverage",
        lambda: selectors.health(spaces=Space.objects.all(), now=now, coverage=True)["total"],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the loaded data (skip reload)")
    args = parser.parse_args()

    import django

    django.setup()
    create_database()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM records_record")
        have = c.fetchone()[0]
    if not (args.keep and have == args.records):
        load(args.records)

    from apps.reminders import services

    with connection.cursor() as c:
        c.execute("SELECT version()")
        print(c.fetchone()[0].split(",")[0], f"· {os.cpu_count()} CPUs")
    now = dt.datetime.now(dt.UTC)
    timed("full sweep, cold (most states change)", lambda: services.sweep(now=now, full=True))
    timed("hourly sweep, same hour (nothing to change)", lambda: services.sweep(now=now))
    later = now + dt.timedelta(days=1)
    timed("hourly sweep, one day later", lambda: services.sweep(now=later))
    timed(
        "hourly sweep, one day and one hour later",
        lambda: services.sweep(now=later + dt.timedelta(hours=1)),
    )
    timed("full (nightly) sweep, steady state", lambda: services.sweep(now=later, full=True))
    timed("daily health snapshot (10 spaces)", lambda: services.snapshot_health())
    bench_reads(later)
    paths = [f"svc{i}/module_{i}.py" for i in range(0, 400, 20)]
    timed(
        "drift report: 20 paths vs 1 anchor per record",
        lambda: (
            services.drift_report(
                repository="bench/repo",
                commit=f"c{int(time.time())}",
                changed_paths=paths,
                source="command",
            )[0].suspect_count
        ),
    )
    uncovered = [f"web/page_{i}.tsx" for i in range(20)]
    timed(
        "drift report: 20 paths no record covers",
        lambda: len(
            services.drift_report(
                repository="bench/repo",
                commit=f"u{int(time.time())}",
                changed_paths=uncovered,
                source="command",
            )[0].unmatched_paths
        ),
    )
    with connection.cursor() as c:
        c.execute("SELECT freshness, count(*) FROM records_record GROUP BY 1 ORDER BY 1")
        print("states:", dict(c.fetchall()))


if __name__ == "__main__":
    main()

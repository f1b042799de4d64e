"""Bulk upsert throughput of the repository next to a raw-driver baseline, per backend.

For each backend the same N Graph events are written (a) by the raw driver as
a plain INSERT into a table of the same shape (the baseline), and (b) through
`repo.upsert_events` (mapping, newer-wins guard, change detection and the
outbox entry of each change included): first write (all rows created), the
same rows again (nothing changes, nothing is written) and a newer version of
every row (all updated). Every figure is the best of 3 rounds, the baseline's too. PostgreSQL is
measured with each bulk strategy (pipelined executemany, one statement over `unnest`
arrays, COPY into a temp table + one merge); the repository uses unnest below
`copy_threshold` rows per chunk and COPY from there.

Run: .venv/bin/python bench/bench_upsert.py [--rows 10000] [--azurite-rows 2000] [--pg-dsn DSN]
Needs a PostgreSQL server (PG_DSN or 127.0.0.1:5432) and node_modules/.bin/azurite for the
Azurite figures; a backend that is not reachable is reported and skipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import azurite  # noqa: E402
from shared.storage import base, schema  # noqa: E402
from shared.storage.fixture import real_table_ddl  # noqa: E402
from shared.storage.rows import Mapped, map_row  # noqa: E402


def _at(base: datetime, seconds: int, fmt: str = "%Y-%m-%dT%H:%M:%S.%f") -> str:
    return (base + timedelta(seconds=seconds)).strftime(fmt) + "7"


def events(count: int, version: int = 1) -> list[dict]:
    """Distinct timestamps per row (nothing for a cache to reuse), as a real backfill has."""
    created, modified, start = (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC),
                                datetime(2024, 6, 3, 9, 30))
    return [{
        "id": f"AAMkAGI2TG93AAA/{i:07d}+x==", "subject": f"Weekly sync {i}", "changeKey": f"ck{version}",
        "lastModifiedDateTime": _at(modified, 60 * i + version) + "Z", "createdDateTime": _at(created, 60 * i) + "Z",
        "isAllDay": False, "isCancelled": False, "type": "singleInstance", "iCalUId": f"040000008200E{i}",
        "start": {"dateTime": _at(start, 3600 * i), "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": _at(start, 3600 * i + 1800), "timeZone": "W. Europe Standard Time"},
        "originalStartTimeZone": "W. Europe Standard Time", "originalEndTimeZone": "W. Europe Standard Time",
        "body": {"contentType": "html", "content": f"<p>Agenda for meeting {i}: " + "lorem ipsum " * 40 + "</p>"},
        "attendees": [{"emailAddress": {"address": f"person{j}@contoso.com", "name": f"Person {j}"}} for j in range(3)],
    } for i in range(count)]


def mapped(items: list[dict]) -> list[Mapped]:
    context = {"microsoft_user_id": "bench-user", "microsoft_calendar_id": "bench-cal"}
    return [map_row(schema.EVENTS, e, context) for e in items]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(backend: str, label: str, rows: int, seconds: float, baseline: float | None) -> None:
    rate = rows / seconds
    ratio = f"{rate / baseline:6.2f}x" if baseline else "   base"
    print(f"{backend:<10} {label:<44} {rows:>7} rows {seconds:8.3f} s {rate:>10,.0f} rows/s {ratio}")


ROUNDS = 3  # every case is the best of this many rounds, like the baseline


def run_repo(backend: str, repo: base.Repository, count: int, baseline_rate: float, label: str = "",
             reset: Callable[[], None] | None = None) -> None:
    """Each round starts from an empty table, as the baseline's does (`reset`, default: delete the
    user's rows): first write, the same rows again, a newer version of each."""
    first, same, newer = events(count), events(count), events(count, 2)
    user, cal = "bench-user", "bench-cal"
    cases = ((f"upsert{label}: first write", first), (f"upsert{label}: unchanged (no write)", same),
             (f"upsert{label}: newer version", newer))
    best = {name: float("inf") for name, _ in cases}
    for _ in range(ROUNDS):
        (reset or (lambda: repo.delete_user(user)))()
        for name, rows in cases:
            best[name] = min(best[name], timed(lambda rows=rows: repo.upsert_events(user, cal, rows)))
        repo.ack_changes(user, [e.seq for e in repo.pending_changes(user, limit=10 * count)])
    for name, _ in cases:
        report(backend, name, count, best[name], baseline_rate)
    repo.delete_user(user)


# ---------------------------------------------------------------------- PostgreSQL
def bench_postgres(dsn: str, count: int) -> None:
    import psycopg
    from psycopg import sql

    from shared.storage.postgres import PostgresRepository

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = dict(item.split("=", 1) for item in dsn.split() if "=" in item)
    target = " ".join(f"{k}={v}" for k, v in {**params, "dbname": name}.items())
    try:
        with psycopg.connect(target, autocommit=True) as conn:
            for statement in real_table_ddl(schema.EVENTS, "postgres"):
                conn.execute(statement.replace("microsoft_calendar_event_v1", "baseline_event")
                             .replace("svi_events_", "svi_baseline_"))
            rows = mapped(events(count))
            names = list(rows[0].values)
            cols = [*names, "data", "row_created_at", "row_updated_at"]
            insert = sql.SQL("INSERT INTO baseline_event ({}) VALUES ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join([sql.Placeholder()] * len(names) + [sql.SQL("%s::jsonb")] + [sql.Placeholder()] * 2))
            now = datetime.now(UTC)
            values = [[r.values[n] for n in names] + [r.text, now, now] for r in rows]

            def raw() -> None:
                conn.execute("TRUNCATE baseline_event")
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(insert, values)

            seconds = min(timed(raw) for _ in range(ROUNDS))  # best of ROUNDS, as every repository case
        baseline = count / seconds
        report("postgres", f"baseline: raw executemany INSERT (best of {ROUNDS})", count, seconds, None)
        repo = PostgresRepository(target, pool_max=2)
        repo.ensure_schema()
        written = ", ".join(spec.name for spec in (schema.EVENTS, schema.OUTBOX, schema.OUTBOX_SEQ))

        def truncate() -> None:  # the baseline's clean start: no dead tuples left by earlier rounds
            with psycopg.connect(target, autocommit=True) as fresh:
                fresh.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(written)))

        for strategy in ("executemany", "unnest", "copy"):
            repo.bulk_strategy = strategy
            run_repo("postgres", repo, count, baseline, f" [{strategy}]", reset=truncate)
        repo.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---------------------------------------------------------------------- SQLite
def bench_sqlite(count: int) -> None:
    import sqlite3

    from shared.storage.sqlite import SqliteRepository, encode

    workdir = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    try:
        conn = sqlite3.connect(workdir / "baseline.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in real_table_ddl(schema.EVENTS, "sqlite"):
            conn.execute(statement)
        rows = mapped(events(count))
        names = list(rows[0].values)
        stamp = encode(schema.TIMESTAMP, datetime.now(UTC))
        values = [[encode(schema.EVENTS.column(n).type, r.values[n]) for n in names] + [r.text, stamp, stamp]
                  for r in rows]
        insert = (f"INSERT INTO microsoft_calendar_event_v1 ({', '.join(names)}, data, row_created_at, "
                  f"row_updated_at) VALUES ({', '.join('?' * (len(names) + 3))})")

        def raw() -> None:
            conn.execute("DELETE FROM microsoft_calendar_event_v1")
            conn.execute("BEGIN")
            conn.executemany(insert, values)
            conn.execute("COMMIT")

        seconds = min(timed(raw) for _ in range(ROUNDS))  # best of ROUNDS, as every repository case
        conn.close()
        report("sqlite", f"baseline: raw executemany INSERT (best of {ROUNDS})", count, seconds, None)
        repo = SqliteRepository(workdir / "repo.db")
        repo.ensure_schema()
        run_repo("sqlite", repo, count, count / seconds)
        repo.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------- Azurite
def bench_azurite(conn_str: str, count: int) -> None:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.storage.tables import MAX_BATCH, TablesRepository

    service = TableServiceClient.from_connection_string(conn_str)
    repo = TablesRepository(service, prefix=f"b{uuid.uuid4().hex[:8]}",
                            blob_service=BlobServiceClient.from_connection_string(conn_str))
    repo.ensure_schema()
    # One empty table per baseline round (created before timing), as every repository round starts empty.
    baseline_tables = [service.create_table(f"b{uuid.uuid4().hex[:8]}base") for _ in range(ROUNDS)]
    now = datetime.now(UTC)
    entities = [repo._entity(schema.EVENTS, {**r.values, "row_created_at": now, "row_updated_at": now}, r.text)
                for r in mapped(events(count))]

    def raw(table) -> None:
        for start in range(0, len(entities), MAX_BATCH):
            table.submit_transaction([("create", e) for e in entities[start:start + MAX_BATCH]])

    seconds = min(timed(lambda t=t: raw(t)) for t in baseline_tables)  # best of ROUNDS, as every repository case
    report("azurite", f"baseline: raw create transactions (100/tx, best of {ROUNDS})", count, seconds, None)
    run_repo("azurite", repo, count, count / seconds)
    repo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--azurite-rows", type=int, default=2_000)
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN") or "host=127.0.0.1 port=5432 user=postgres "
                                                                         "dbname=postgres")
    parser.add_argument("--skip", nargs="*", default=[], choices=["postgres", "sqlite", "azurite"])
    args = parser.parse_args()
    print(f"{'backend':<10} {'case':<44} {'rows':>12} {'time':>10} {'throughput':>17} vs base")
    if "postgres" not in args.skip:
        try:
            bench_postgres(args.pg_dsn, args.rows)
        except Exception as exc:  # a missing server is reported, not fatal
            print(f"postgres   skipped: {exc}")
    if "sqlite" not in args.skip:
        bench_sqlite(args.rows)
    if "azurite" not in args.skip:
        started = azurite.start()
        if started is None:
            print("azurite    skipped: node_modules/.bin/azurite not installed (npm ci)")
        else:
            try:
                bench_azurite(started.connection_string, args.azurite_rows)
            finally:
                started.stop()


if __name__ == "__main__":
    main()

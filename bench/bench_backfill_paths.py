"""Backfill throughput four ways on the same pages, interleaved rounds, printed as ratios.

One simulator user holds N single events in the primary calendar; every path reads the same
`me/calendarView/delta` pages (GRAPH_PAGE_SIZE rows each) from the Graph simulator over HTTPS:

- product:  `worker.run` of a full sync (sign-in, calendar list, pages -> rows + outbox, outbox published
            to the embedded queue) into empty tables of the chosen backend;
- sdk:      what a msgraph-sdk user would write: SDK paging (`calendar_view.delta`, `with_url(nextLink)`),
            each page's events serialized back to JSON by the SDK and stored with psycopg executemany
            (INSERT ... ON CONFLICT DO UPDATE) into a table of the same shape; PostgreSQL only, and only
            the first --sdk-events events (~100x below the fetch limit; events/s hardly depends on the count);
- fetch:    raw `requests` GETs of the same pages, no parsing, no storing (the fetch limit);
- copy:     psycopg binary COPY of the same rows, already mapped, one transaction per page (the store limit).

Each round runs the four paths one after the other (order rotated per round) so load from
other processes hits all of them alike; the table prints each path's median and the ratios.

--latency-ms: the simulator answers every Graph request that much later (a list runs one table
per latency). At 0 ms the simulator, the client and PostgreSQL share this machine's two cores and
the product's ratio measures CPU per event; Graph itself answers a delta page in tens to hundreds
of milliseconds, and then the ratio measures how well fetching and storing overlap.
--sim: the simulator in its own process (`process`, the default: Graph is another machine, its
CPU is not this process's GIL) or in this one (`inprocess`, as the issue's first figures were taken).

Run: .venv/bin/python bench/bench_backfill_paths.py [--events 20000] [--rounds 3] [--page-size 100]
     [--backend postgres|sqlite|tables] [--sdk-events 300] [--latency-ms 0,50] [--sim process|inprocess]
     [--profile FILE]
PostgreSQL: PG_DSN or 127.0.0.1:5432 (a throwaway database is created and dropped; the copy path
always writes there). tables: Table Storage on an Azurite started from node_modules.
--profile: cProfile of one extra product round, written to FILE (pstats) and summarised.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_backfill import REDIRECT, configure, link, slot, throwaway_database  # noqa: E402


def seed(sim: Any, tenant: str, count: int) -> str:
    import random

    user = sim.create_user(tenant, "Bench User", f"bench-{uuid.uuid4().hex[:6]}@{tenant}.test")
    rnd = random.Random(1)
    for start in range(0, count, 5000):
        sim.create_events(user, [{"subject": f"event {i}", "body": {"contentType": "text", "content": "x" * 200},
                                  **slot(rnd.randint(-85, 360), rnd.randint(6, 18))}
                                 for i in range(start, min(count, start + 5000))])
    return user


class Paths:
    """The four ways of reading the pages, sharing one simulator user and one database."""

    def __init__(self, backend: str, user: str, page_size: int, pg_dsn: str | None, sdk_events: int) -> None:
        from shared.config import get_settings
        from shared.graph import client_for_user
        from shared.storage import open_repository
        from shared.sync.window import current_window, graph_time

        self.backend, self.user, self.page_size, self.pg_dsn = backend, user, page_size, pg_dsn
        self.sdk_events = sdk_events
        self.settings = get_settings()
        self.repo = open_repository(self.settings)
        self.graph = client_for_user(user, self.settings)
        window = current_window(self.settings)
        self.params = {"startDateTime": graph_time(window[0]), "endDateTime": graph_time(window[1])}
        self.url = f"{self.settings.graph_base_url.rstrip('/')}/me/calendarView/delta"
        self.pages: list[bytes] = []

    # ------------------------------------------------------------------ product
    def product(self) -> int:
        from shared.queues import OUTBOUND_QUEUE, open_queue
        from shared.queues.messages import SyncRequest
        from shared.storage import schema
        from shared.sync import worker

        repo, user = self.repo, self.user
        for spec in (schema.OUTBOX, schema.SEEN, schema.CURSORS, schema.EVENTS):  # empty tables, same account
            repo._atomic(user, lambda tx, spec=spec: repo._delete(tx, spec, user, {"microsoft_user_id": user}))
        open_queue(OUTBOUND_QUEUE).clear()
        outcome = worker.run(worker_request := SyncRequest(user, "linked", full=True))
        assert outcome.status == "synced", (outcome, worker_request)
        return repo.counts(user)[schema.EVENTS.name]

    # ------------------------------------------------------------------ raw fetch
    def fetch(self) -> int:
        import orjson
        import requests

        session = requests.Session()
        session.verify = os.environ["REQUESTS_CA_BUNDLE"]
        headers = {"Authorization": f"Bearer {self.graph.token_provider()}",
                   "Prefer": f"odata.maxpagesize={self.page_size}"}
        pages, url, params = [], self.url, dict(self.params)
        while url:
            response = session.get(url, params=params, headers=headers, timeout=60)
            response.raise_for_status()
            pages.append(response.content)
            url, params = _next_link(response.content), None
        self.pages = pages
        return sum(len(orjson.loads(p)["value"]) for p in pages)  # counted after the clock (see run_round)

    # ------------------------------------------------------------------ store limit
    def copy(self) -> int:
        import orjson
        import psycopg
        from psycopg import sql

        from shared.storage import schema
        from shared.storage.fixture import SQL_TYPES
        from shared.storage.rows import map_row, utcnow

        spec = schema.EVENTS
        context = {"microsoft_user_id": self.user, "microsoft_calendar_id": "primary"}
        mapped = [[map_row(spec, item, context) for item in orjson.loads(p)["value"] if "@removed" not in item]
                  for p in self.pages]
        names = list(mapped[0][0].values)
        cols = [*names, "data", "row_created_at", "row_updated_at"]
        types = ["text" if spec.column(n).type == schema.JSON else SQL_TYPES["postgres"][spec.column(n).type]
                 for n in cols]
        now = utcnow()
        with psycopg.connect(os.environ["PG_DSN"], autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS copy_limit ({})").format(sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in zip(cols, types, strict=True))))
            conn.execute("TRUNCATE copy_limit")
            started = time.perf_counter()
            for rows in mapped:
                with conn.transaction(), conn.cursor() as cur, cur.copy(
                        sql.SQL("COPY copy_limit ({}) FROM STDIN (FORMAT BINARY)").format(
                            sql.SQL(", ").join(map(sql.Identifier, cols)))) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row([row.values.get(n) for n in names] + [row.text, now, now])
            self.copy_seconds = time.perf_counter() - started
        return sum(len(rows) for rows in mapped)

    # ------------------------------------------------------------------ msgraph-sdk route
    def sdk(self) -> int:
        return asyncio.run(self._sdk())

    async def _sdk(self) -> int:
        import httpx
        import psycopg
        from azure.core.credentials import AccessToken
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
        from msgraph_core import GraphClientFactory

        token = self.graph.token_provider()

        class Static:  # an azure-identity style credential holding the app's token
            def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
                return AccessToken(token, int(time.time()) + 3000)

        host = httpx.URL(self.settings.graph_base_url).host
        auth = AzureIdentityAuthenticationProvider(Static(), scopes=["https://graph.microsoft.com/.default"],
                                                   allowed_hosts=[host])
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=os.environ["REQUESTS_CA_BUNDLE"], timeout=60))
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.settings.graph_base_url.rstrip("/")
        client = GraphServiceClient(request_adapter=adapter)
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            start_date_time=self.params["startDateTime"], end_date_time=self.params["endDateTime"])
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", f"odata.maxpagesize={self.page_size}")
        stored = 0
        with psycopg.connect(os.environ["PG_DSN"], autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS sdk_events (id text PRIMARY KEY, subject text, "
                         "start_at text, end_at text, is_cancelled boolean, data jsonb)")
            conn.execute("TRUNCATE sdk_events")
            page = await client.users.by_user_id(self.user).calendar_view.delta.get(request_configuration=config)
            while page is not None:
                rows = []
                for event in page.value or []:
                    writer = JsonSerializationWriter()
                    event.serialize(writer)
                    rows.append((event.id, event.subject, event.start.date_time if event.start else None,
                                 event.end.date_time if event.end else None, bool(event.is_cancelled),
                                 writer.get_serialized_content().decode()))
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany("INSERT INTO sdk_events VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (id) "
                                    "DO UPDATE SET subject = EXCLUDED.subject, start_at = EXCLUDED.start_at, "
                                    "end_at = EXCLUDED.end_at, is_cancelled = EXCLUDED.is_cancelled, "
                                    "data = EXCLUDED.data", rows)
                stored += len(rows)
                if not page.odata_next_link or stored >= self.sdk_events:
                    break
                page = await client.users.by_user_id(self.user).calendar_view.delta.with_url(page.odata_next_link).get(
                    request_configuration=RequestConfiguration())
        return stored


def _next_link(body: bytes) -> str | None:
    """The nextLink of a raw page without parsing the page (it is the fetch limit)."""
    at = body.rfind(b'"@odata.nextLink"')
    if at < 0:
        return None
    start = body.index(b'"', body.index(b":", at) + 1) + 1
    return body[start:body.index(b'"', start)].decode().replace("\\/", "/")


def timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = run()
    return count, time.perf_counter() - started


def summarise_profile(path: str) -> None:
    """Shares of the product round's wall time on the main thread (the page thread fetches, decodes
    and maps pages; cProfile sees only the main thread). Groups overlap: the PostgreSQL waits are
    also inside save_page and the outbox publisher."""
    stats = pstats.Stats(path)
    entries = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table untyped
    total = max(v[3] for v in entries.values())  # the outermost call's cumulative time
    groups = {"outbox publishing (outbound.publish_pending)": ("outbound.py", "publish_pending"),
              "save_page (one page's transaction)": ("storage/rounds.py", "save_page"),
              "  row mapping inside it (map_batch)": ("storage/rows.py", "map_batch"),
              "waiting on PostgreSQL (psycopg wait, all)": ("psycopg/connection.py", "wait"),
              "waiting for the next page (Future.result)": ("concurrent/futures/_base.py", "result"),
              "JSON decode by the json module (rows read back)": ("json/decoder.py", "raw_decode")}
    for label, (file, func) in groups.items():
        cumulative = sum(v[3] for k, v in entries.items() if k[0].endswith(file) and k[2] == func)
        print(f"  {label:<50} {cumulative:6.2f}s  {100 * cumulative / total:5.1f}%")
    print(f"  {'total':<50} {total:6.2f}s")


def compare(paths: Paths, order: list[str], rounds: int) -> None:
    """Interleaved rounds of every path; the medians and the ratios to the fetch limit."""
    rates: dict[str, list[float]] = {k: [] for k in order}
    cpu: dict[str, list[float]] = {k: [] for k in order}  # this process's CPU seconds per event
    paths.fetch()  # warm up: the simulator's caches, the token, the page list for `copy`
    for round_no in range(rounds):
        for path in order[round_no % len(order):] + order[:round_no % len(order)]:
            cpu_before = time.process_time()
            count, seconds = timed(getattr(paths, path))
            cpu[path].append((time.process_time() - cpu_before) / count)
            if path == "copy":
                seconds = paths.copy_seconds  # mapping excluded: the rows are "already mapped"
            rates[path].append(count / seconds)
        print(f"  round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
    fetch = statistics.median(rates["fetch"])
    print(f"\n{'path':<10} {'events/s (median)':>18} {'min-max':>17} {'x fetch limit':>14} {'CPU us/event':>13}")
    for path, values in rates.items():
        print(f"{path:<10} {statistics.median(values):>18,.0f} {min(values):>8,.0f}-{max(values):<8,.0f} "
              f"{statistics.median(values) / fetch:>14.2f} {1e6 * statistics.median(cpu[path]):>13.0f}")
    print("(CPU us/event: this process's CPU time, all threads; with --sim inprocess it includes the simulator's)")
    print(f"\nproduct / fetch limit = {statistics.median(rates['product']) / fetch:.2f} (target >= 0.6)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--sdk-events", type=int, default=300)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "tables"], default="postgres")
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN") or "host=127.0.0.1 port=5432 user=postgres "
                                                                         "dbname=postgres")
    parser.add_argument("--sim", choices=["process", "inprocess"], default="process",
                        help="the Graph simulator in its own process (default) or in this one")
    parser.add_argument("--latency-ms", default="0",
                        help="comma-separated Graph latencies; one table each (default 0)")
    parser.add_argument("--profile", help="write a cProfile of one more product round here")
    args = parser.parse_args()
    import logging

    from devtools import azurite
    from graphsim import GraphSimulator
    from graphsim.process import SimulatorProcess
    from shared import runtime
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository
    from shared.sync import worker

    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="bench-paths-")
    sim: Any = SimulatorProcess().start() if args.sim == "process" else GraphSimulator().start()
    cleanup = contextlib.ExitStack()
    dsn = cleanup.enter_context(throwaway_database(args.pg_dsn))
    tables = azurite.start() if args.backend == "tables" else None
    if args.backend == "tables" and tables is None:
        raise SystemExit("Azurite is not available (node_modules/.bin/azurite)")
    try:
        tenant = sim.create_tenant()
        client_id, secret = sim.register_app(tenant, redirect_uris=[REDIRECT])
        configure({"AUTHORITY_HOST": sim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url,
                   "CLIENT_ID": client_id, "REQUESTS_CA_BUNDLE": sim.ca_file,
                   "GRAPH_PAGE_SIZE": str(args.page_size), "SQLITE_PATH": f"{tmp}/calendar.db",
                   "LOCAL_QUEUE_PATH": f"{tmp}/queue.db", "LOCAL_SECRETS_DIR": f"{tmp}/secrets",
                   "DATABASE_BACKEND": args.backend, "APP_BASE_URL": "http://127.0.0.1:7071",
                   "PG_DSN": dsn,
                   **({"TABLES_CONNECTION_STRING": tables.connection_string} if tables else {})})
        open_secret_store().set(CLIENT_SECRET, secret)
        open_repository().ensure_schema()
        started = time.perf_counter()
        user = seed(sim, tenant, args.events)
        link(sim, tenant, user)
        open_queue(SYNC_QUEUE).clear()
        worker._subscribe = lambda *a: None  # no HTTP host here: no subscription to validate
        paths = Paths(args.backend, user, args.page_size, args.pg_dsn, args.sdk_events)
        print(f"{args.events} events seeded and linked in {time.perf_counter() - started:.1f}s; backend "
              f"{args.backend}, pages of {args.page_size}, {args.rounds} interleaved rounds, simulator "
              f"{'in its own process' if args.sim == 'process' else 'in this process'}")
        order = ["fetch", "product", "copy"] + (["sdk"] if args.backend == "postgres" else [])
        for latency in [int(v) for v in args.latency_ms.split(",")]:
            sim.set_faults(latency_ms=latency)
            print(f"\nGraph latency {latency} ms per request")
            compare(paths, order, args.rounds)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(paths.product)
            profiler.dump_stats(args.profile)
            print(f"\ncProfile of one product round ({args.profile}):")
            summarise_profile(args.profile)
    finally:
        runtime.reset()
        sim.stop()
        if tables is not None:
            tables.stop()
        cleanup.close()


if __name__ == "__main__":
    main()

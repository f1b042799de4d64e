"""Backfill throughput and Graph requests per notification burst, against the Graph simulator.

A user with N events over three calendars (primary by calendarView/delta, two
others by full listing) is linked through the app's real sign-in flow, then
the worker backfills into the chosen database; events/s is rows stored per
second of the whole sync (Graph over HTTPS + mapping + writes). Then a burst
of 10 notifications for 10 changes is queued and drained: the simulator's
request counters give the Graph requests the burst cost.

Run: .venv/bin/python bench/bench_backfill.py [--events 5000] [--backend postgres|sqlite|both]
     [--pg-dsn DSN] [--page-size 100]
PostgreSQL: PG_DSN or 127.0.0.1:5432 (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIRECT = "http://127.0.0.1:7071/api/oauth/callback"


def slot(days: int, hour: int) -> dict:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today + dt.timedelta(days=days, hours=hour)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"}}


def seed(sim, tenant: str, count: int) -> tuple[str, list[str]]:
    user = sim.create_user(tenant, "Bench User", f"bench-{uuid.uuid4().hex[:6]}@{tenant}.test")
    team, travel = sim.create_calendar(user, "Team"), sim.create_calendar(user, "Travel")
    rnd = random.Random(1)
    ids: list[str] = []
    for calendar_id, share in ((None, 0.6), (team["id"], 0.3), (travel["id"], 0.1)):
        bodies = [{"subject": f"event {i}", **slot(rnd.randint(-85, 360), rnd.randint(6, 18))}
                  for i in range(int(count * share))]
        ids += sim.create_events(user, bodies, calendar_id=calendar_id)
    return user, ids


def link(sim, tenant: str, user: str) -> None:
    import azure.functions as func
    import requests

    import function_app
    from devhost.host import registered_functions

    functions = {f.get_function_name(): f.get_user_function() for f in registered_functions(function_app.app)}

    def call(name: str, url: str):
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        return functions[name](func.HttpRequest("GET", url, headers={}, params=query, body=b""))

    sim.set_consent_user(tenant, user)
    start = call("oauth_start", "http://127.0.0.1:7071/api/oauth/start")
    consent = requests.get(start.headers["Location"], verify=sim.ca_file, allow_redirects=False, timeout=10)
    page = call("oauth_callback", consent.headers["Location"])
    assert page.status_code == 200, page.get_body()


@contextlib.contextmanager
def throwaway_database(admin_dsn: str) -> Iterator[str]:
    """A new PostgreSQL database for one bench run, dropped afterwards however the run ends; yields its DSN."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = dict(item.split("=", 1) for item in admin_dsn.split() if "=" in item)
    try:
        yield " ".join(f"{k}={v}" for k, v in {**params, "dbname": name}.items())
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(env: dict[str, str]) -> None:
    from shared import runtime

    os.environ.update(env)
    runtime.reset()


def run_backend(backend: str, events: int, page_size: int, pg_dsn: str | None) -> None:
    from graphsim import GraphSimulator
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository
    from shared.sync import worker

    tmp = tempfile.mkdtemp(prefix="bench-backfill-")
    sim = GraphSimulator().start()
    cleanup = contextlib.ExitStack()
    try:
        tenant = sim.create_tenant()
        client_id, secret = sim.register_app(tenant, redirect_uris=[REDIRECT])
        env = {"AUTHORITY_HOST": sim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url,
               "CLIENT_ID": client_id, "REQUESTS_CA_BUNDLE": sim.ca_file, "GRAPH_PAGE_SIZE": str(page_size),
               "SQLITE_PATH": f"{tmp}/calendar.db", "LOCAL_QUEUE_PATH": f"{tmp}/queue.db",
               "LOCAL_SECRETS_DIR": f"{tmp}/secrets", "DATABASE_BACKEND": backend,
               "APP_BASE_URL": "http://127.0.0.1:7071"}
        if backend == "postgres":
            env["PG_DSN"] = cleanup.enter_context(throwaway_database(pg_dsn))
        configure(env)
        open_secret_store().set(CLIENT_SECRET, secret)
        repo = open_repository()
        user, ids = seed(sim, tenant, events)
        link(sim, tenant, user)
        open_queue(SYNC_QUEUE).clear()
        worker._subscribe = lambda *a: None  # no HTTP host here: no subscription to validate
        sim.reset_counters()
        started = time.perf_counter()
        outcome = worker.run(SyncRequest(user, "linked", full=True))
        seconds = time.perf_counter() - started
        rows = len(repo.list_events(user))
        requests_made = sum(sim.counters().values())
        print(f"{backend:<9} backfill   {rows:>6} events  {seconds:6.2f}s  {rows / seconds:8.0f} events/s  "
              f"{requests_made} Graph requests ({outcome.status})")

        # A burst: 10 changes, 10 notifications queued together, one drain.
        for event_id in ids[:10]:
            sim.update_event(user, event_id, subject="burst")
        sim.reset_counters()
        received = time.time()
        queue = open_queue(SYNC_QUEUE)
        queue.send_many(SyncRequest(user, "notification", received_at=received).to_json() for _ in range(10))
        started = time.perf_counter()
        statuses = []
        while messages := queue.receive(16, visibility_timeout=300):
            for message in messages:
                statuses.append(worker.handle_message(message.body).status)
                queue.delete(message)
        seconds = time.perf_counter() - started
        counters = sim.counters()
        delta = counters.get("GET /v1.0/me/calendarView/delta", 0)
        print(f"{backend:<9} burst      10 notifications -> {statuses.count('synced')} sync, "
              f"{delta} delta request(s), {sum(counters.values())} Graph requests in all "
              f"({', '.join(f'{v} {k}' for k, v in sorted(counters.items()))}); {seconds * 1000:.0f} ms")
    finally:
        from shared import runtime

        runtime.reset()
        sim.stop()
        cleanup.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN") or "host=127.0.0.1 port=5432 user=postgres "
                                                                         "dbname=postgres")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        try:
            run_backend(backend, args.events, args.page_size, args.pg_dsn)
        except Exception as exc:  # a missing server is reported, not fatal
            if backend != "postgres":
                raise
            print(f"postgres  skipped: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()

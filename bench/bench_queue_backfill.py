"""PostgreSQL backfill with the Azure Storage queue (Azurite) next to the same backfill on the embedded queue.

Each round seeds a fresh simulator user with N events, links it through the
real sign-in flow and times the full sync (`worker.run`, outbox publishing
included) into a throwaway PostgreSQL database. The queue configurations run
interleaved in one process, against one Azurite started here:

- embedded: the SQLite queue (LOCAL_QUEUE_PATH), row-changes.v2;
- azurite: QUEUE_CONNECTION_STRING -> Azurite, row-changes.v2 (the default);
- azurite-v1: the same with FEED_ROW_SCHEMA=row-change.v1 (one message per row, as before).

Queue requests are counted by wrapping the queue classes' methods in this
script (send_many counts one request per body, as each is one HTTP call to
Azure). Printed: events/s per configuration (median of the rounds), the ratio
to the embedded queue, and queue requests per sync.

Run: .venv/bin/python bench/bench_queue_backfill.py [--events 20000] [--rounds 2] [--pg-dsn DSN]
     [--configs embedded,azurite,azurite-v1]  (default: embedded,azurite)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_backfill import REDIRECT, configure, link, seed, throwaway_database  # noqa: E402

CONFIGS = ("embedded", "azurite", "azurite-v1")
DEFAULT_CONFIGS = "embedded,azurite"


class QueueCounter:
    """Counts queue requests per queue name by wrapping the backends' methods (bench only)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()  # wall time inside the queue calls

    @contextmanager
    def installed(self) -> Iterator[None]:
        from shared.queues.azure import AzureStorageQueue
        from shared.queues.local import LocalQueue

        saved = []
        for cls in (AzureStorageQueue, LocalQueue):
            for name in ("send_many", "receive", "delete", "release"):
                original = getattr(cls, name)
                saved.append((cls, name, original))
                setattr(cls, name, self._wrap(name, original))
        try:
            yield
        finally:
            for cls, name, original in saved:
                setattr(cls, name, original)

    def _wrap(self, action: str, original: Any) -> Any:
        counts, seconds = self.counts, self.seconds

        def send_many(queue: Any, bodies: Iterable[str], **kwargs: Any) -> int:
            bodies = list(bodies)
            counts[f"{queue.name} send"] += len(bodies)  # one HTTP request per message on Azure
            started = time.perf_counter()
            try:
                return int(original(queue, bodies, **kwargs))
            finally:
                seconds[queue.name] += time.perf_counter() - started

        def other(queue: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = original(queue, *args, **kwargs)
            finally:
                seconds[queue.name] += time.perf_counter() - started
            idle = action == "receive" and not result  # a poll of an empty queue
            counts[f"{queue.name} {action}{' (empty)' if idle else ''}"] += 1
            return result

        return send_many if action == "send_many" else other


def one_round(config: str, sim: Any, tenant: str, secret: str, base_env: dict[str, str], azurite: str,
              events: int, counter: QueueCounter) -> tuple[float, int, Counter[str], float]:
    """One backfill of a fresh user in `config`: (events/s, rows, queue requests, seconds in queue calls)."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository
    from shared.sync import worker

    env = dict(base_env)
    env["QUEUE_CONNECTION_STRING"] = azurite if config.startswith("azurite") else ""
    env["AzureWebJobsStorage"] = azurite if config.startswith("azurite") else ""
    env["FEED_ROW_SCHEMA"] = "row-change.v1" if config.endswith("-v1") else "row-changes.v2"
    configure(env)
    open_secret_store().set(CLIENT_SECRET, secret)
    repo = open_repository()
    user, _ = seed(sim, tenant, events)
    link(sim, tenant, user)
    open_queue(SYNC_QUEUE).clear()
    counter.counts.clear()
    counter.seconds.clear()
    started = time.perf_counter()
    outcome = worker.run(SyncRequest(user, "linked", full=True))
    seconds = time.perf_counter() - started
    assert outcome.status == "synced", outcome
    rows = len(repo.list_events(user))
    return rows / seconds, rows, Counter(counter.counts), sum(counter.seconds.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN") or "host=127.0.0.1 port=5432 user=postgres "
                                                                         "dbname=postgres")
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    if unknown := set(configs) - set(CONFIGS):
        parser.error(f"unknown configs: {', '.join(sorted(unknown))}")
    import logging

    from devtools import azurite as azurite_process
    from graphsim import GraphSimulator
    from shared import runtime
    from shared.sync import worker

    logging.basicConfig(level=logging.WARNING)
    worker._subscribe = lambda request, repo, outcome: None  # no HTTP host here: no subscription to validate
    started = azurite_process.start()
    if started is None:
        raise SystemExit("Azurite could not be started: run `npm ci` (make test does)")
    sim = GraphSimulator().start()
    cleanup = contextlib.ExitStack()
    dsn = cleanup.enter_context(throwaway_database(args.pg_dsn))
    tmp = tempfile.mkdtemp(prefix="bench-queue-backfill-")
    counter = QueueCounter()
    results: dict[str, list[tuple[float, int, Counter[str], float]]] = {c: [] for c in configs}
    try:
        tenant = sim.create_tenant()
        client_id, secret = sim.register_app(tenant, redirect_uris=[REDIRECT])
        base_env = {"AUTHORITY_HOST": sim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url,
                    "CLIENT_ID": client_id, "REQUESTS_CA_BUNDLE": sim.ca_file, "GRAPH_PAGE_SIZE": str(args.page_size),
                    "SQLITE_PATH": f"{tmp}/calendar.db", "LOCAL_QUEUE_PATH": f"{tmp}/queue.db",
                    "LOCAL_SECRETS_DIR": f"{tmp}/secrets", "DATABASE_BACKEND": "postgres",
                    "PG_DSN": dsn,
                    "APP_BASE_URL": "http://127.0.0.1:7071"}
        with counter.installed():
            for round_no in range(args.rounds):
                for config in configs:  # interleaved: load from other processes hits every config alike
                    rate, rows, counts, in_queue = one_round(config, sim, tenant, secret, base_env,
                                                             started.connection_string, args.events, counter)
                    results[config].append((rate, rows, counts, in_queue))
                    print(f"round {round_no + 1}  {config:<11} {rows:>6} events  {rate:8.0f} events/s  "
                          f"{in_queue:6.2f}s in queue calls, requests: {sum(counts.values())} "
                          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})", flush=True)
    finally:
        runtime.reset()
        sim.stop()
        started.stop()
        cleanup.close()
    base = statistics.median(r[0] for r in results[configs[0]])
    print(f"\nPostgreSQL backfill of {args.events} events, median of {args.rounds} round(s), "
          f"ratio to {configs[0]}:")
    for config in configs:
        rate = statistics.median(r[0] for r in results[config])
        requests = statistics.median(sum(r[2].values()) for r in results[config])
        print(f"  {config:<11} {rate:8.0f} events/s  {rate / base:5.2f}x  {requests:.0f} queue requests per sync")
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1/5/15 min)")


if __name__ == "__main__":
    main()

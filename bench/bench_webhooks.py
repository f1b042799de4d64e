"""Webhook delivery: deliveries per second to a local receiver, and the latency a webhook adds.

Rows are stored (SQLite, embedded queue, as in the demo), published by the
outbox publisher (feed queue + one job per row for the endpoint) and
delivered by `shared.feed.delivery.deliver` from 4 worker threads, the way
the queue trigger runs, to a local HTTPS receiver that verifies every
signature. Printed side by side in this run: the same POSTs made directly
(unsigned, no queue: the receiver's own limit), deliveries per second, and
the latency from the row stored to the receiver holding the request
(p50/p99). No test asserts these timings.

Run: .venv/bin/python bench/bench_webhooks.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKERS = 4


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    from graphsim import certs
    from tests.feed.receiver import WebhookReceiver

    bundle = certs.generate()
    receiver = WebhookReceiver("bench-secret", bundle.server_context())
    work = tempfile.mkdtemp(prefix="bench-webhooks-")
    os.environ.update({
        "SQLITE_PATH": f"{work}/calendar.db", "LOCAL_QUEUE_PATH": f"{work}/queue.db",
        "LOCAL_SECRETS_DIR": f"{work}/secrets", "REQUESTS_CA_BUNDLE": bundle.ca_file, "FEED_QUEUES": "false",
        "WEBHOOKS": json.dumps([{"name": "bench", "url": receiver.url}]),
    })
    from shared import runtime
    from shared.feed.delivery import deliver
    from shared.queues import WEBHOOK_QUEUE, open_queue
    from shared.secrets import open_secret_store
    from shared.storage import open_repository
    from shared.sync.outbound import publish_pending

    runtime.reset()
    open_secret_store().set("webhook-bench", "bench-secret")
    repo = open_repository()
    user = "bench-user"
    repo.upsert_user(user, {"id": user})
    repo.upsert_calendars(user, [{"id": "cal", "name": "Calendar", "isDefaultCalendar": True}])

    # The receiver's own limit: the same number of POSTs straight from one session per worker.
    import requests

    def direct(count: int) -> None:
        session = requests.Session()
        for _ in range(count):
            session.post(receiver.url, data=b"{}", timeout=10).close()

    started = time.perf_counter()
    threads = [threading.Thread(target=direct, args=(args.rows // WORKERS,)) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    direct_rate = (args.rows // WORKERS * WORKERS) / (time.perf_counter() - started)
    receiver.requests.clear()
    receiver.accepted.clear()

    stored_at: dict[str, float] = {}
    queue = open_queue(WEBHOOK_QUEUE)
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            batch = queue.receive(16, visibility_timeout=60)
            if not batch:
                time.sleep(0.005)
                continue
            for message in batch:
                deliver(message.body)
                queue.delete(message)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in pool:
        t.start()
    started = time.perf_counter()
    for n in range(args.rows):  # one row per sync, published at once: the latency a webhook adds
        event = {"id": f"e{n}", "subject": f"event {n}", "changeKey": f"ck{n}",
                 "start": {"dateTime": "2030-01-01T09:00:00", "timeZone": "UTC"},
                 "end": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"}}
        repo.upsert_events(user, "cal", [event])
        stored_at[f"e{n}"] = time.time()
        publish_pending(user, repo)
    while len({m["remote_id"] for m in receiver.unique().values()} & set(stored_at)) < args.rows:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    done.set()
    latencies = []
    by_id = {}
    with receiver.lock:
        for request, body in zip([r for r in receiver.requests if r["status"] == 200], receiver.accepted,
                                 strict=True):
            by_id.setdefault(body["remote_id"], request["at"])
    latencies = [(by_id[k] - stored_at[k]) * 1000 for k in stored_at if k in by_id]
    assert all(r["signature_ok"] for r in receiver.requests)
    rate = args.rows / elapsed
    print(f"{'path':<52} {'per second':>10}")
    print(f"{'direct POSTs to the receiver (its limit)':<52} {direct_rate:>10.0f}")
    print(f"{'row stored -> published -> signed delivery':<52} {rate:>10.0f}   ({rate / direct_rate:.2f}x the limit)")
    print(f"latency row stored -> delivered: p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {_percentile(latencies, 0.99):.1f} ms over {len(latencies)} rows, {WORKERS} delivery workers")
    receiver.close()


if __name__ == "__main__":
    main()

"""Renewal of 2,000 calendar subscriptions against the Graph simulator with 100 ms per Graph request.

    .venv/bin/python bench/bench_renewal.py [--app-only 380] [--delegated 20] [--calendars 5] [--latency-ms 100]

Every calendar has a subscription of its own: by default 400 mailboxes with 5
calendars each, 2,000 subscriptions. App-only ones are renewed 20 to a `$batch`;
delegated ones one PATCH each (a batch cannot mix user tokens). The simulator's subscription endpoints are
wrapped to add the latency to every request (inner `$batch` requests
included, run one after the other as a conservative model) and to count
requests in flight per mailbox. Prints elapsed time, Graph request counts and
the largest number of requests in flight for one mailbox; the function
timeout in host.json is 10 minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class InFlight:
    """Requests in flight per mailbox, and the maximum seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.max = 0

    def enter(self, key: str) -> None:
        with self.lock:
            self.now[key] = self.now.get(key, 0) + 1
            self.max = max(self.max, self.now[key])

    def leave(self, key: str) -> None:
        with self.lock:
            self.now[key] -= 1


def instrument(sim, latency_s: float, inflight: InFlight) -> None:
    original = sim.graph._subscriptions

    def handler(req, token, rest):
        sub = sim.subscriptions.subs.get(rest[0]) if rest else None
        mailbox = sub.user_id if sub else (token.user_id or "app")
        inflight.enter(mailbox)
        try:
            time.sleep(latency_s)
            return original(req, token, rest)
        finally:
            inflight.leave(mailbox)

    sim.graph._subscriptions = handler


def configure(sim, tenant: str, client_id: str, secret: str, base_url: str, data: Path) -> None:
    env = {"SQLITE_PATH": str(data / "calendar.db"), "LOCAL_QUEUE_PATH": str(data / "queue.db"),
           "LOCAL_SECRETS_DIR": str(data / "secrets"), "APP_BASE_URL": base_url, "AUTHORITY_HOST": sim.base_url,
           "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url, "CLIENT_ID": client_id,
           "REQUESTS_CA_BUNDLE": sim.ca_file, "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    from shared import runtime

    runtime.reset()
    from shared.secrets import CLIENT_SECRET, open_secret_store

    open_secret_store().set(CLIENT_SECRET, secret)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-only", type=int, default=380, help="app-only mailboxes")
    parser.add_argument("--delegated", type=int, default=20, help="delegated mailboxes")
    parser.add_argument("--calendars", type=int, default=5, help="calendars per mailbox, default one included")
    parser.add_argument("--latency-ms", type=int, default=100)
    args = parser.parse_args()

    from graphsim import GraphSimulator
    from graphsim.receiver import Receiver

    sim = GraphSimulator(validation_timeout=10.0, allow_http_notification_urls=True).start()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return run(sim, receiver, Path(tmp), args)
        finally:
            receiver.close()
            sim.stop()


def run(sim, receiver, data: Path, args: argparse.Namespace) -> int:
    from tests.keepalive.conftest import CALLBACK, refresh_token

    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
    configure(sim, tenant, client_id, secret, receiver.url.rsplit("/api/", 1)[0], data)
    from shared.auth.tokens import get_token_service
    from shared.storage import open_repository
    from shared.subscriptions import ensure_subscriptions, renew_due

    mailboxes = args.app_only + args.delegated
    total = mailboxes * args.calendars
    print(f"setting up {args.app_only} app-only and {args.delegated} delegated mailboxes, {args.calendars} "
          f"calendars each ...", flush=True)
    t0 = time.monotonic()
    repo = open_repository()
    users = [sim.create_user(tenant, display_name=f"U{n}", user_principal_name=f"u{n}@{tenant}.test")
             for n in range(mailboxes)]
    for user in users:
        for n in range(1, args.calendars):
            sim.create_calendar(user, f"Calendar {n}")
    modes = {u: ("app_only" if n < args.app_only else "delegated") for n, u in enumerate(users)}
    for user in users:
        repo.upsert_user(user, {"id": user})
        if modes[user] == "delegated":
            get_token_service().store_refresh_token(user, refresh_token(sim, tenant, client_id, secret, user))
        repo.update_account(user, status="linked", mode=modes[user], graph_user_id=user)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(ensure_subscriptions, users))
    due = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)  # all expire before the horizon
    for row in repo.list_calendar_subscriptions():
        repo.update_calendar_subscription(row.microsoft_user_id, row.microsoft_calendar_id, expiration=due)
    print(f"setup took {time.monotonic() - t0:.1f}s", flush=True)

    inflight = InFlight()
    instrument(sim, args.latency_ms / 1000, inflight)
    sim.faults.set(latency_ms=args.latency_ms)
    sim.reset_counters()
    report = renew_due()
    counters = sim.counters()
    graph = {k: v for k, v in counters.items() if "/v1.0/" in k}
    outer = sum(v for k, v in graph.items() if not k.startswith("$batch "))
    print(f"renewal of {total} calendar subscriptions ({args.latency_ms} ms per Graph request): "
          f"{report.elapsed:.1f}s -- {report.summary()}")
    print(f"Graph HTTP requests: {outer}; by kind: {dict(sorted(graph.items()))}")
    print(f"token requests: {sum(v for k, v in counters.items() if '/oauth2/' in k)}")
    print(f"max requests in flight for one mailbox: {inflight.max} (limit 4)")
    ok = report.renewed == total and report.failed == 0 and inflight.max <= 4 and report.elapsed < 600
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

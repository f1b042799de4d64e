"""Event mutations per second on the Graph simulator with change notifications delivered.

Usage: .venv/bin/python bench/bench_graphsim.py [--mutations N] [--threads T] [--users U]
Prints two figures: mutations through the Python control API, and through Graph HTTPS calls (PATCH
/users/{id}/events/{id} with an app token), each measured until every notification has reached a local
receiver (rate = mutations / time to last delivery).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import pathlib
import sys
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from graphsim import GraphSimulator
from graphsim.receiver import Receiver


def _slot(i: int) -> dict:
    s = dt.datetime(2024, 1, 1, 8) + dt.timedelta(hours=i % 5000)
    return {"start": {"dateTime": s.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (s + dt.timedelta(minutes=30)).isoformat(), "timeZone": "UTC"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutations", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--users", type=int, default=4)
    args = ap.parse_args()
    recv = Receiver()
    sim = GraphSimulator(mailbox_rate_limit=10**9, allow_http_notification_urls=True).start()  # plain-http receiver
    try:
        tenant = sim.create_tenant()
        cid, secret = sim.register_app(tenant)
        users = [sim.create_user(tenant) for _ in range(args.users)]
        s = requests.Session()
        s.verify, s.trust_env = sim.ca_file, False
        tok = s.post(f"{sim.authority(tenant)}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": cid, "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        exp = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for u in users:
            r = s.post(f"{sim.graph_url}/subscriptions", headers=h, json={
                "changeType": "created,updated,deleted", "notificationUrl": recv.url,
                "resource": f"users/{u}/events", "expirationDateTime": exp, "clientState": "bench"})
            r.raise_for_status()

        n = args.mutations
        t0 = time.perf_counter()
        for i in range(n):
            sim.create_event(users[i % len(users)], subject=f"e{i}", **_slot(i))
        t_mut = time.perf_counter() - t0
        sim.flush_notifications(timeout=120)
        recv.wait_for(n, timeout=60)
        t_all = time.perf_counter() - t0
        got = len(recv.notifications)
        print(f"python-api: {n} creates in {t_mut:.2f}s ({n / t_mut:.0f}/s); all {got} notifications "
              f"delivered after {t_all:.2f}s -> {n / t_all:.0f} mutations/s with delivery, "
              f"{recv.posts} POSTs (avg batch {got / max(recv.posts, 1):.1f})")

        ids = {u: sim.create_events(u, [{"subject": "x", **_slot(i)} for i in range(n // len(users))])
               for u in users}
        sim.flush_notifications(timeout=120)
        base = len(recv.notifications)
        jobs = [(u, eid) for u in users for eid in ids[u]]

        def worker(chunk: list[tuple[str, str]]) -> int:
            sess = requests.Session()
            sess.verify, sess.trust_env = sim.ca_file, False
            bad = 0
            for u, eid in chunk:
                r = sess.patch(f"{sim.graph_url}/users/{u}/events/{eid}", headers=h, json={"subject": "patched"})
                bad += r.status_code != 200
            return bad

        chunks = [[j for j in jobs if j[0] == u] for u in users]   # one thread per mailbox (4-concurrency rule)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(min(args.threads, len(chunks))) as pool:
            failures = sum(pool.map(worker, chunks))
        t_mut = time.perf_counter() - t0
        sim.flush_notifications(timeout=120)
        recv.wait_for(base + len(jobs), timeout=60)
        t_all = time.perf_counter() - t0
        print(f"graph-https: {len(jobs)} PATCHes ({failures} failed) in {t_mut:.2f}s ({len(jobs) / t_mut:.0f}/s); "
              f"notifications delivered after {t_all:.2f}s -> {len(jobs) / t_all:.0f} mutations/s with delivery")
    finally:
        sim.stop()
        recv.close()


if __name__ == "__main__":
    main()

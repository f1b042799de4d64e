"""Acknowledgement latency of the notification endpoint, over real HTTP through the local host.

Batches of 1 and 100 verified notifications (HMAC clientState) are POSTed to
/api/graph/notifications; the time to the 202 is measured per request (p50/p99).
The sync queue is the embedded one, the queue trigger is off (only the ack is
measured). Also: the validation handshake, warm and in a fresh interpreter
(import function_app + handle one validation request: the cold-start path Graph
gives 10 s).

Run: .venv/bin/python bench/bench_notifications.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD = """
import time; t0 = time.perf_counter()
import azure.functions as func, function_app
from devhost.host import registered_functions
fn = next(f for f in registered_functions(function_app.app) if f.get_function_name() == "graph_notifications")
req = func.HttpRequest("POST", "http://x/api/graph/notifications?validationToken=abc", headers={}, body=b"",
                       params={"validationToken": "abc"})
answer = fn.get_user_function()(req)
assert answer.status_code == 200 and answer.get_body() == b"abc"
print((time.perf_counter() - t0) * 1000)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cold_validation(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        total = (time.perf_counter() - started) * 1000
        times.append((total, float(out.stdout.strip())))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-notify-")
    os.environ.update({"SQLITE_PATH": f"{tmp}/c.db", "LOCAL_QUEUE_PATH": f"{tmp}/q.db",
                       "LOCAL_SECRETS_DIR": f"{tmp}/secrets", "APP_BASE_URL": "http://127.0.0.1:7071"})
    for name in ("QUEUE_CONNECTION_STRING", "QUEUE_ACCOUNT_URL", "KEY_VAULT_URL"):
        os.environ.pop(name, None)
    import logging

    import requests

    from devhost.host import DevHost
    from shared.notifications import client_state

    logging.basicConfig(level=logging.ERROR)
    host = DevHost(port=0, timers=False, queues=False, function_key="k", master_key="m").start()
    try:
        target = client_state.issue(client_state.SYNC, "bench-user")
        url = host.base_url + target.notification_url.split("7071", 1)[1]
        session = requests.Session()

        def item(i: int) -> dict:
            return {"subscriptionId": "sub", "clientState": target.client_state, "changeType": "updated",
                    "resource": f"Users/u/Events/{i}", "resourceData": {"id": str(i)}}

        print(f"{'case':<44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
        for size in (1, 100):
            body = json.dumps({"value": [item(i) for i in range(size)]}).encode()
            for _ in range(20):  # warm-up
                session.post(url, data=body, headers={"Content-Type": "application/json"}).raise_for_status()
            times = []
            for _ in range(args.requests):
                started = time.perf_counter()
                answer = session.post(url, data=body, headers={"Content-Type": "application/json"})
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 202, answer.text
            print(f"{f'ack, batch of {size}':<44} {len(times):>5} {percentile(times, .5):>8.2f} "
                  f"{percentile(times, .99):>8.2f}")
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            answer = session.post(url + "&validationToken=Validation%3A+bench", data=b"",
                                  headers={"Content-Type": "text/plain"})
            times.append((time.perf_counter() - started) * 1000)
            assert answer.text == "Validation: bench"
        print(f"{'validation handshake (warm)':<44} {len(times):>5} {percentile(times, .5):>8.2f} "
              f"{percentile(times, .99):>8.2f}")
    finally:
        host.stop()
    cold = cold_validation(args.cold_runs)
    print(f"{'validation in a fresh interpreter (in-process)':<44} {len(cold):>5} "
          f"{statistics.median(c[1] for c in cold):>8.1f} {max(c[1] for c in cold):>8.1f}")
    print(f"{'  same, incl. interpreter start':<44} {len(cold):>5} "
          f"{statistics.median(c[0] for c in cold):>8.1f} {max(c[0] for c in cold):>8.1f}")


if __name__ == "__main__":
    main()

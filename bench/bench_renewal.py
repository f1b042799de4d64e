"""Renewal at 2,000 / 10,000 / 50,000 calendar subscriptions: the timer + queue workers vs one invocation.

    .venv/bin/python bench/bench_renewal.py [--sizes 2000,10000,50000] [--workers 4] [--calendars 5]
        [--latency-ms 100] [--baseline-max 50000] [--shard-accounts 200]

Mailboxes have `--calendars` calendars each, every calendar its own subscription; 95% of the mailboxes
are app-only (renewed 20 to a `$batch`), 5% delegated (one PATCH each: a batch cannot mix user tokens),
as in the 380/20 mix measured before. The simulator's subscription endpoints sleep `--latency-ms` per
request (inner `$batch` requests included, one after the other: a conservative model) and count the
requests in flight per mailbox.

Per size, side by side in one run:
- fan-out: the timer's body (`plan_renewal`) in one process and `--workers` queue worker processes
  (the Functions instances), each taking one shard per invocation from the `subscription-renewal`
  queue and running the trigger's body (`renew_shard`) as the host would;
- baseline (sizes up to `--baseline-max`): the former single invocation, `renew_due()` in one process.
Printed: the longest single invocation, total Graph requests, peak RSS per process, wall time and the
ratios. Setup puts the subscriptions straight into the simulator and the database (creating 50,000 over
HTTP would only measure the setup); RENEWAL_MARGIN_MINUTES makes every subscription due in every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

APP_ONLY_SHARE = 0.95


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


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries it over fork and exec, so a child
    would report the bench process's own peak (the simulator holding every mailbox)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- child processes: the timer, a queue worker, the former single invocation ----------------------
def child_plan(shard_accounts: int) -> dict[str, Any]:
    from shared.subscriptions.shards import plan_renewal

    started = time.monotonic()
    plan = plan_renewal(shard_accounts=shard_accounts)
    return {"invocations": [time.monotonic() - started], "rss_mb": _peak_rss_mb(), "shards": plan.shards}


def child_worker(done_flag: str) -> dict[str, Any]:
    """Take one shard per invocation until the planner is done and the queue is empty."""
    from shared.queues import RENEWAL_QUEUE, open_queue
    from shared.subscriptions.shards import renew_shard

    queue = open_queue(RENEWAL_QUEUE)
    idle_rss = _peak_rss_mb()  # after the imports, before the first shard
    durations: list[float] = []
    while True:
        messages = queue.receive(1, visibility_timeout=600)
        if not messages:
            if Path(done_flag).exists() and queue.depth() == 0:
                break
            time.sleep(0.05)
            continue
        started = time.monotonic()
        report = renew_shard(messages[0].body)
        durations.append(time.monotonic() - started)
        if report is None or report.failed:
            print(f"shard problem: {report.as_dict() if report else 'malformed'}", file=sys.stderr)
        queue.delete(messages[0])
    return {"invocations": durations, "rss_mb": _peak_rss_mb(), "idle_rss_mb": idle_rss}


def child_inline() -> dict[str, Any]:
    from shared.subscriptions import renew_due

    started = time.monotonic()
    report = renew_due()
    return {"invocations": [time.monotonic() - started], "rss_mb": _peak_rss_mb(), "renewed": report.renewed,
            "failed": report.failed}


def _child(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"child {process.args} failed ({process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


# --- the bench process: simulator, setup, runs -------------------------------------------------------
def configure(sim, tenant: str, client_id: str, secret: str, base_url: str, data: Path) -> None:
    env = {"SQLITE_PATH": str(data / "calendar.db"), "LOCAL_QUEUE_PATH": str(data / "queue.db"),
           "LOCAL_SECRETS_DIR": str(data / "secrets"), "APP_BASE_URL": base_url, "AUTHORITY_HOST": sim.base_url,
           "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url, "CLIENT_ID": client_id,
           "REQUESTS_CA_BUNDLE": sim.ca_file, "LOG_LEVEL": "WARNING",
           "RENEWAL_MARGIN_MINUTES": "30000"}  # beyond any lifetime: every subscription is due in every run
    os.environ.update(env)
    from shared import runtime

    runtime.reset()
    from shared.secrets import CLIENT_SECRET, open_secret_store

    open_secret_store().set(CLIENT_SECRET, secret)


class Population:
    """Mailboxes with `calendars` subscribed calendars each, grown between sizes."""

    def __init__(self, sim, tenant: str, client_id: str, secret: str, calendars: int) -> None:
        self.sim, self.tenant, self.client_id, self.secret, self.calendars = sim, tenant, client_id, secret, calendars
        self.mailboxes = 0

    def grow(self, mailboxes: int) -> None:
        from shared.storage import open_repository

        repo = open_repository()
        new = range(self.mailboxes, mailboxes)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: self._mailbox(repo, n), new))
        self.mailboxes = mailboxes

    def _mailbox(self, repo, n: int) -> None:
        from graphsim.subscriptions import Subscription
        from shared.auth.tokens import get_token_service
        from shared.subscriptions.create import LIVE
        from tests.keepalive.conftest import refresh_token

        sim = self.sim
        user = sim.create_user(self.tenant, display_name=f"U{n}", user_principal_name=f"u{n}@{self.tenant}.test")
        delegated = n % 20 == 19  # 5%
        repo.upsert_user(user, {"id": user})
        if delegated:
            get_token_service().store_refresh_token(
                user, refresh_token(sim, self.tenant, self.client_id, self.secret, user))
        repo.update_account(user, status="linked", mode="delegated" if delegated else "app_only", graph_user_id=user)
        calendars = [(sim.store.mailbox(user).default_calendar().id, True)]
        calendars += [(sim.create_calendar(user, f"Calendar {c}")["id"], False) for c in range(1, self.calendars)]
        expiration = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
        for calendar_id, is_default in calendars:
            resource_path = f"{'me' if delegated else f'users/{user}'}/calendars/{calendar_id}/events"
            sub = Subscription(id=str(uuid.uuid4()), resource=resource_path,
                               change_types=["created", "updated", "deleted"],
                               notification_url=os.environ["APP_BASE_URL"] + "/api/graph/notifications",
                               lifecycle_url=None, expiration=expiration, client_state=None,
                               app_id=self.client_id, tenant_id=self.tenant, user_id=user, kind="event",
                               container=calendar_id, creator_id=user if delegated else self.client_id,
                               latest_tls="v1_2")
            with sim.subscriptions.lock:
                sim.subscriptions.subs[sub.id] = sub
                sim.subscriptions.by_user.setdefault(user, []).append(sub)
            repo.update_calendar_subscription(user, calendar_id, subscription_id=sub.id, expiration=expiration,
                                              state=LIVE, is_default=is_default, resource=resource_path)


def _graph_requests(sim) -> int:
    counters = sim.counters()
    return sum(v for k, v in counters.items() if "/v1.0/" in k and not k.startswith("$batch "))


def _clear_queues() -> None:
    from shared.queues import RENEWAL_QUEUE, SYNC_QUEUE, open_queue

    for name in (SYNC_QUEUE, RENEWAL_QUEUE):  # the safety-net syncs of the previous run
        open_queue(name).clear()


def run_fanout(sim, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    from shared.storage import open_repository
    from shared.subscriptions import progress

    _clear_queues()
    sim.reset_counters()
    flag = data / "planned.flag"
    flag.unlink(missing_ok=True)
    started = time.monotonic()
    workers = [_child(["--child", "worker", str(flag)]) for _ in range(args.workers)]
    planner = _result(_child(["--child", "plan", str(args.shard_accounts)]))
    flag.touch()
    results = [_result(w) for w in workers]
    wall = time.monotonic() - started
    run = progress.last_run(open_repository())
    assert run is not None
    return {"wall": wall, "requests": _graph_requests(sim), "planner": planner, "workers": results, "run": run}


def run_baseline(sim) -> dict[str, Any]:
    _clear_queues()
    sim.reset_counters()
    started = time.monotonic()
    result = _result(_child(["--child", "inline"]))
    return {"wall": time.monotonic() - started, "requests": _graph_requests(sim), **result}


def report(size: int, fan: dict[str, Any], base: dict[str, Any] | None, inflight: InFlight) -> bool:
    run = fan["run"]
    invocations = fan["planner"]["invocations"] + [d for w in fan["workers"] for d in w["invocations"]]
    longest = max(invocations)
    worker_rss = max(w["rss_mb"] for w in fan["workers"])
    print(f"\n== {size:,} subscriptions ({run['accounts']:,} mailboxes, {run['shards_planned']} shards)")
    print(f"fan-out : wall {fan['wall']:.1f}s with {len(fan['workers'])} workers; timer invocation "
          f"{fan['planner']['invocations'][0]:.2f}s (RSS {fan['planner']['rss_mb']:.0f} MB); longest invocation "
          f"{longest:.1f}s over {len(invocations)}; Graph requests {fan['requests']:,}; peak RSS per worker "
          f"{', '.join(format(w['rss_mb'], '.0f') for w in fan['workers'])} MB (idle "
          f"{min(w['idle_rss_mb'] for w in fan['workers']):.0f}); renewed {run['renewed']:,}, failed {run['failed']}")
    ok = (run["renewed"] == size and run["failed"] == 0 and run["state"] == "finished" and inflight.max <= 4)
    if size >= 50000:
        ok = ok and longest < 60 and fan["requests"] <= 4875 and worker_rss < 150
    if base is not None:
        print(f"baseline: one invocation of {base['invocations'][0]:.1f}s (wall {base['wall']:.1f}s); Graph requests "
              f"{base['requests']:,}; "
              f"RSS {base['rss_mb']:.0f} MB; renewed {base['renewed']:,}, failed {base['failed']}")
        print(f"ratios  : longest invocation {longest / base['invocations'][0]:.2f}x, wall "
              f"{fan['wall'] / base['wall']:.2f}x, Graph requests {fan['requests'] / max(1, base['requests']):.2f}x, "
              f"peak RSS per process {worker_rss / base['rss_mb']:.2f}x (fan-out / baseline)")
        ok = ok and base["renewed"] == size and fan["requests"] <= base["requests"]
    print(f"max requests in flight for one mailbox so far: {inflight.max} (limit 4)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,10000,50000", help="subscription counts, ascending")
    parser.add_argument("--workers", type=int, default=4, help="queue worker processes (instances)")
    parser.add_argument("--calendars", type=int, default=5, help="calendars per mailbox, default one included")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--baseline-max", type=int, default=50000, help="run the single invocation up to this size")
    parser.add_argument("--shard-accounts", type=int, default=200)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (child_plan(int(rest[0])) if kind == "plan" else child_worker(rest[0]) if kind == "worker"
                  else child_inline())
        print(json.dumps(result))
        return 0

    from graphsim import GraphSimulator
    from graphsim.receiver import Receiver
    from tests.keepalive.conftest import CALLBACK

    sizes = [int(s) for s in args.sizes.split(",")]
    sim = GraphSimulator(validation_timeout=10.0, allow_http_notification_urls=True).start()
    receiver = Receiver()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tenant = sim.create_tenant()
            client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
            configure(sim, tenant, client_id, secret, receiver.url.rsplit("/api/", 1)[0], Path(tmp))
            population = Population(sim, tenant, client_id, secret, args.calendars)
            inflight = InFlight()
            instrument(sim, args.latency_ms / 1000, inflight)
            for size in sizes:
                t0 = time.monotonic()
                sim.faults.set(latency_ms=0)
                population.grow(size // args.calendars)
                sim.faults.set(latency_ms=args.latency_ms)
                print(f"setup to {size:,} subscriptions took {time.monotonic() - t0:.1f}s", flush=True)
                fan = run_fanout(sim, args, Path(tmp))
                base = run_baseline(sim) if size <= args.baseline_max else None
                ok = report(size, fan, base, inflight) and ok
                sys.stdout.flush()
        finally:
            receiver.close()
            sim.stop()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Steady changes for many mailboxes: change -> row latency through notifications, queues and the sync worker.

For each queue configuration (run one after the other in this process, same
simulator): a fresh PostgreSQL database, N app-only mailboxes with one event
each, linked and fully synced with their subscriptions through the local host
(devhost: HTTP receiver + queue triggers, as `func start` runs them). Then
RATE changes per second for SECONDS seconds: each updates a random mailbox's
event in the simulator, which notifies the host; the sync worker stores the
row. A watcher reads the rows of the events with a change in flight every 50 ms:
change -> row latency is the time from the Graph update to the row holding the
new subject (p50/p99/max).

- embedded: the embedded SQLite queue;
- azurite: QUEUE_CONNECTION_STRING and AzureWebJobsStorage -> Azurite (started here).

Queue requests are counted by wrapping the queue classes in this script (one
per message sent; receives, deletes and releases one each), per change; polls
that found a queue empty are shown apart (the local host polls every
poll_interval, the Functions host backs off to maxPollingInterval).

Where the parts run (production has Graph on another machine and each Functions host in its own process;
in one process they share one GIL with the watcher and the change driver):

- --sim process (default): the simulator is `python -m graphsim` (graphsim/process.py), driven over its
  control API; --sim inprocess: a GraphSimulator in this process, as before;
- --host inprocess (default): the local host runs here, so its queue requests are counted; --host process:
  `python -m devhost` in its own process, as `make run` starts it (only this process's sends are counted).

Also printed: the notification POSTs Graph made during the changes that failed (the receiver did not
answer in Graph's 3 s: the change waits for the retry) and the slowest one, and the receiver's
calendar-sync sends (p99/max) when the host runs here.

Run: .venv/bin/python bench/bench_steady.py [--users 200] [--rate 20] [--seconds 60] [--configs embedded,azurite]
     [--sim process|inprocess] [--host inprocess|process] [--pg-dsn DSN]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_backfill import REDIRECT, configure, slot, throwaway_database  # noqa: E402
from bench_queue_backfill import QueueCounter  # noqa: E402

CONFIGS = ("embedded", "azurite")
POLL_INTERVAL = 0.05  # the local host's first re-poll of a queue that had messages


class TimedQueueCounter(QueueCounter):
    """QueueCounter that also keeps each call's duration, per queue and action."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: dict[str, list[float]] = {}
        self.stalls: list[tuple[float, float, str]] = []  # (perf_counter at the start, seconds, call): calls >= 1 s

    def _wrap(self, action: str, original: Any) -> Any:
        counted = super()._wrap(action, original)
        durations, stalls = self.durations, self.stalls

        def timed(queue: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return counted(queue, *args, **kwargs)
            finally:
                took = time.perf_counter() - started
                durations.setdefault(f"{queue.name} {action}", []).append(took)
                if took >= 1.0:
                    stalls.append((started, took, f"{queue.name} {action}"))

        return timed


class HostProcess:
    """`python -m devhost` (what `make run` starts) on `port`, with this process's environment."""

    def __init__(self, port: int, log_path: str) -> None:
        self.port, self.log_path = port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> HostProcess:
        env = {**os.environ, "LOG_LEVEL": "warning"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "devhost", "--port", str(self.port), "--no-timers",
                                          "--poll-interval", str(POLL_INTERVAL)], cwd=ROOT, env=env,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the local host did not start; its log: {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)

    def drain(self, timeout: float = 60.0) -> bool:
        """Every trigger queue empty: a message stays in its queue (invisible) until its trigger finished."""
        from shared.queues import RENEWAL_QUEUE, SYNC_QUEUE, WEBHOOK_QUEUE, open_queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(open_queue(name).depth() == 0 for name in (SYNC_QUEUE, RENEWAL_QUEUE, WEBHOOK_QUEUE)):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU of this process, or of process `pid` from /proc (None where there is none)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class CpuMeter:
    """CPU used by this process and the simulator / host processes between start() and read()."""

    def __init__(self, parts: dict[str, int | None]) -> None:
        self.parts = parts  # name -> pid (None: this process)
        self.started: dict[str, float | None] = {}

    def start(self) -> None:
        self.started = {name: cpu_seconds(pid) for name, pid in self.parts.items()}

    def read(self) -> dict[str, float]:
        """Seconds of CPU per part (parts /proc could not tell are left out)."""
        found = {}
        for name, pid in self.parts.items():
            now, then = cpu_seconds(pid), self.started.get(name)
            if now is not None and then is not None:
                found[name] = now - then
        return found


def failed_deliveries(records: Iterable[dict[str, Any]], since: float) -> tuple[int, int, float]:
    """(notification POSTs since `since`, how many failed, the slowest one's seconds)."""
    posts = [r for r in records if r.get("kind") == "notification" and r.get("time", 0) >= since
             and not r.get("dropped")]
    failed = sum(1 for r in posts if not r.get("ok"))
    return len(posts), failed, max((float(r.get("elapsed_ms") or 0) for r in posts), default=0.0) / 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_quiet(sim: Any, host: Any, timeout: float = 600.0) -> None:
    """Notifications delivered and the queues drained, twice in a row."""
    deadline, quiet = time.monotonic() + timeout, 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not settle")
        sim.flush_notifications(timeout=10)
        host.drain(timeout=max(1.0, deadline - time.monotonic()))
        quiet = quiet + 1 if sim.flush_notifications(timeout=0.5) and host.drain(timeout=1) else 0
        time.sleep(0.2)


class Watcher(threading.Thread):
    """Polls the event rows of pending changes; a change counts as stored when its row shows it or a later one."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.pending: dict[str, list[tuple[int, float]]] = {}  # event id -> (change number, time of the change)
        self.latencies: list[float] = []
        self.changed_at: list[float] = []  # perf_counter of each change, in the order of `latencies`
        self.lock, self.stop = threading.Lock(), threading.Event()

    def expect(self, event_id: str, number: int) -> None:
        with self.lock:
            self.pending.setdefault(event_id, []).append((number, time.perf_counter()))

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                with self.lock:
                    waiting = [event_id for event_id, changes in self.pending.items() if changes]
                # Only the rows with a change in flight: the watcher shares this process with the host.
                rows = conn.execute("SELECT microsoft_event_id, data->>'subject' FROM microsoft_calendar_event_v1 "
                                    "WHERE microsoft_event_id = ANY(%s)", (waiting,)).fetchall() if waiting else []
                now = time.perf_counter()
                with self.lock:
                    for event_id, subject in rows:
                        waiting = self.pending.get(event_id)
                        if not waiting or not (subject or "").startswith("steady "):
                            continue
                        shown = int(subject.split()[1])
                        done = [at for number, at in waiting if number <= shown]
                        self.latencies += [now - at for at in done]
                        self.changed_at += done
                        self.pending[event_id] = [(n, at) for n, at in waiting if n > shown]
                time.sleep(0.05)


def run_config(config: str, args: argparse.Namespace, sim: Any, azurite: str) -> dict[str, Any]:

    from devhost import DevHost
    from shared import runtime
    from shared.queues.messages import SyncRequest, enqueue_sync
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository

    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[REDIRECT])
    users = [sim.create_user(tenant, f"S{n}", f"s{n}@{tenant}.test") for n in range(args.users)]
    events = {user: sim.create_events(user, [{"subject": "seed", **slot(1, 9)}])[0] for user in users}
    cleanup = contextlib.ExitStack()
    dsn = cleanup.enter_context(throwaway_database(args.pg_dsn))
    port, tmp = free_port(), tempfile.mkdtemp(prefix="bench-steady-")
    host: Any = None
    on_azurite = azurite if config == "azurite" else ""
    configure({"AUTHORITY_HOST": sim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": sim.graph_url,
               "CLIENT_ID": client_id, "REQUESTS_CA_BUNDLE": sim.ca_file, "DATABASE_BACKEND": "postgres",
               "PG_DSN": dsn, "SQLITE_PATH": f"{tmp}/calendar.db", "LOCAL_QUEUE_PATH": f"{tmp}/queue.db",
               "LOCAL_SECRETS_DIR": f"{tmp}/secrets", "APP_BASE_URL": f"http://127.0.0.1:{port}",
               "QUEUE_CONNECTION_STRING": on_azurite, "AzureWebJobsStorage": on_azurite,
               "GRAPH_MAX_RETRIES": "10"})
    open_secret_store().set(CLIENT_SECRET, secret)
    repo = open_repository()
    counter, watcher = TimedQueueCounter(), Watcher(dsn)
    try:
        if args.host == "process":
            host = HostProcess(port, f"{tmp}/devhost.log").start()
        else:
            host = DevHost(port=port, timers=False, queues=True, poll_interval=POLL_INTERVAL).start()
        started = time.perf_counter()
        for user in users:  # app-only onboarding: what it stores, then the sync it queues
            repo.upsert_user(user, {"id": user})
            repo.update_account(user, status="linked", mode="app_only", graph_user_id=user)
            enqueue_sync(SyncRequest(user, "linked", full=True, subscribe=True))
        wait_quiet(sim, host)
        linked = time.perf_counter() - started
        subscribed = sum(1 for u in users for r in repo.list_calendar_subscriptions(u) if r.subscription_id)
        watcher.start()
        rnd, changes = random.Random(7), 0
        parts: dict[str, int | None] = {"bench": None}
        if args.sim == "process":
            parts["simulator"] = sim.pid
        if isinstance(host, HostProcess) and host.proc is not None:
            parts["host"] = host.proc.pid
        meter = CpuMeter(parts)
        meter.start()
        with counter.installed():
            begin, begin_clock = time.perf_counter(), time.time()
            while (elapsed := time.perf_counter() - begin) < args.seconds:
                due = int(elapsed * args.rate)
                while changes < due:
                    user = rnd.choice(users)
                    watcher.expect(events[user], changes)
                    sim.update_event(user, events[user], subject=f"steady {changes}")
                    changes += 1
                time.sleep(0.005)
            offered = time.perf_counter() - begin
            wait_quiet(sim, host)
            time.sleep(0.2)
        cpu = meter.read()
        watcher.stop.set()
        watcher.join()
        latencies = watcher.latencies
        missing = changes - len(latencies)  # never stored
        # The queue service stalls when every call takes 1 s or more at once (Azurite's extent GC, 60 s
        # after it started, then 60 s after the last one ended): the changes stored before the first stall.
        first_stall = min((at for at, _, _ in counter.stalls), default=None)
        before_stall = [latency for latency, at in zip(latencies, watcher.changed_at, strict=True)
                        if first_stall is None or at + latency < first_stall]
        posts, failed, slowest = failed_deliveries(sim.deliveries, begin_clock)
        sends = counter.durations.get("calendar-sync send_many", [])
        slowest_calls = {action: max(seconds) for action, seconds in counter.durations.items()
                         if seconds and max(seconds) >= 1.0}
        # When the slow calls began (seconds since the queue service started): all at once is the service.
        stalled_at = sorted({round(at - args.azurite_started) for at, _, _ in counter.stalls})
        return {"cpu": cpu, "posts": posts, "failed_posts": failed, "slowest_post": slowest,
                "send_p99": percentile(sends, 0.99) if sends else None, "send_max": max(sends, default=None),
                "slowest_calls": slowest_calls, "stalled_at": stalled_at,
                "config": config, "linked_s": linked, "subscribed": subscribed, "changes": changes,
                "rate": changes / offered, "seen": len(latencies), "missing": missing,
                "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "max": max(latencies),
                "before_stall": len(before_stall),
                "p99_before_stall": percentile(before_stall, 0.99) if before_stall else None,
                "requests": dict(counter.counts)}
    finally:
        watcher.stop.set()
        if host is not None:
            host.stop()
        runtime.reset()
        cleanup.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--sim", choices=("process", "inprocess"), default="process",
                        help="the Graph simulator in its own process (default) or in this one")
    parser.add_argument("--host", choices=("inprocess", "process"), default="inprocess",
                        help="the local host in this process (default: its queue requests are counted) or its own")
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN") or "host=127.0.0.1 port=5432 user=postgres "
                                                                         "dbname=postgres")
    args = parser.parse_args()
    import logging

    from devtools import azurite as azurite_process
    from graphsim import GraphSimulator
    from graphsim.process import SimulatorProcess

    logging.basicConfig(level=logging.ERROR)
    args.azurite_started = time.perf_counter()
    azurite = azurite_process.start()
    if azurite is None:
        raise SystemExit("Azurite could not be started: run `npm ci` (make test does)")
    sim: Any = (SimulatorProcess() if args.sim == "process" else GraphSimulator(allow_http_notification_urls=True)
                ).start()  # the process accepts http:// notification URLs unless told otherwise
    print(f"simulator: {args.sim}, local host: {args.host}", flush=True)
    results = []
    try:
        for config in [c for c in args.configs.split(",") if c]:
            result = run_config(config, args, sim, azurite.connection_string)
            results.append(result)
            requests = result["requests"]
            print(f"{config:<9} {args.users} users linked+subscribed in {result['linked_s']:.0f}s "
                  f"({result['subscribed']} subscriptions); {result['changes']} changes at {result['rate']:.1f}/s: "
                  f"change->row p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, "
                  f"max {result['max'] * 1000:.0f} ms ({result['missing']} not observed); "
                  + (f"queue requests {sum(v for k, v in requests.items() if 'empty' not in k) / result['changes']:.2f}"
                     f" per change without empty polls ({', '.join(f'{v} {k}' for k, v in sorted(requests.items()))})"
                     if args.host == "inprocess" else "queue requests not counted (the host runs in its own process)")
                  + f"; notification POSTs "
                  f"{result['posts']}, {result['failed_posts']} failed, slowest {result['slowest_post']:.2f} s"
                  + (f"; receiver's calendar-sync send p99 {result['send_p99'] * 1000:.0f} ms, max "
                     f"{result['send_max'] * 1000:.0f} ms" if result["send_p99"] is not None else "")
                  + "".join(f"; slowest {action} {seconds:.1f} s"
                            for action, seconds in result["slowest_calls"].items())
                  + (f" (calls of 1 s or more began {', '.join(str(t) for t in result['stalled_at'])} s after "
                     f"Azurite started; the {result['before_stall']} changes stored before: p99 "
                     f"{result['p99_before_stall'] * 1000:.0f} ms)" if result["stalled_at"] and result["before_stall"]
                     else "")
                  + "; CPU per change (changes + settling): "
                  + ", ".join(f"{name} {seconds * 1000 / result['changes']:.1f} ms"
                              for name, seconds in result["cpu"].items()), flush=True)
    finally:
        sim.stop()
        azurite.stop()
    if len(results) > 1:
        base = results[0]
        for result in results[1:]:
            print(f"p99 {result['config']} / {base['config']}: {result['p99'] / base['p99']:.2f}x "
                  f"({result['p99'] * 1000:.0f} ms vs {base['p99'] * 1000:.0f} ms)")
    load = os.getloadavg()
    print(f"load: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min)")


if __name__ == "__main__":
    main()

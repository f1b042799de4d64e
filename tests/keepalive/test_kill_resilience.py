"""Issue 12, acceptance 3: SIGKILL the worker three times during a 20,000-event backfill.

The worker is a separate `python -m devhost` process (queue trigger only); this
process serves the notification endpoint (a DevHost without queues), so Graph's
notifications keep arriving while the worker is dead. Meanwhile one change a
tenth of a second lands in the mailbox. After the third restart the replica
must equal the simulator's ground truth within 2 minutes, with no renewal run,
and the worker's log never goes quiet for longer than a lease while work is
pending (a dead owner's lease used to block the user for 10 silent minutes, and
the resumed round used to cover newer notifications, leaving stale rows).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.keepalive.conftest import CALLBACK, link
from tests.keepalive.test_convergence import _free_port, _slot
from tests.replica import expected_rows, replica_rows

EVENTS = 20_000
KILL_AT = (3_000, 8_000, 13_000)  # rows stored when each SIGKILL lands
LEASE_SECONDS = 10  # above the 5 s progress-log interval plus a slow page on a busy runner
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """`python -m devhost` running the queue trigger; its log lines are timestamped as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[tuple[float, str]] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(_free_port()), "--no-timers"], cwd=ROOT,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.lines.append((time.monotonic(), "<SIGKILL>"))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _mutate(sim: Any, user: str, stop: threading.Event, rng: random.Random) -> None:
    """One change every 0.1 s, as the user would make them: create, update, delete."""
    created: list[str] = []
    while not stop.wait(0.1):
        kind = rng.choice(("create", "create", "update", "delete"))
        if kind == "create" or not created:
            created.append(sim.create_event(user, subject=f"live {len(created)}", **_slot(rng))["id"])
        elif kind == "update":
            sim.update_event(user, rng.choice(created), subject=f"edited {rng.random():.6f}")
        else:
            sim.delete_event(user, created.pop(rng.randrange(len(created))))


def _differences(sim: Any, settings: Any, repo: Any, user: str) -> int:
    want, have = expected_rows(sim, settings, user), replica_rows(repo, user)
    ids = set(want["events"]) | set(have["events"])
    return sum(1 for i in ids if want["events"].get(i) != have["events"].get(i)) + (
        want["calendars"] != have["calendars"])


def test_three_sigkills_during_a_backfill_converge_without_a_renewal_run(graphsim, app_env, monkeypatch):
    from devhost import DevHost
    from shared.queues.messages import SyncRequest, enqueue_sync
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository

    sim = graphsim
    monkeypatch.setattr(sim.subscriptions, "validation_timeout", 10.0)
    rng = random.Random(12)
    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
    user = sim.create_user(tenant, display_name="Bulk", user_principal_name=f"bulk@{tenant}.test")
    port = _free_port()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    settings = app_env(AUTHORITY_HOST=sim.base_url, TENANT=tenant, GRAPH_BASE_URL=sim.graph_url,
                       CLIENT_ID=client_id, APP_BASE_URL=f"http://127.0.0.1:{port}", GRAPH_PAGE_SIZE="200",
                       SYNC_WINDOW_DAYS_BACK="30", SYNC_WINDOW_DAYS_AHEAD="90",
                       SYNC_LEASE_SECONDS=str(LEASE_SECONDS), LOG_LEVEL="info")
    open_secret_store(settings).set(CLIENT_SECRET, secret)
    repo = open_repository()
    env = type("Env", (), {"sim": sim, "tenant": tenant, "client_id": client_id, "secret": secret})()
    receiver = DevHost(port=port, timers=False, queues=False).start()  # Graph's notifications land here
    worker = Worker(dict(os.environ))
    stop = threading.Event()
    try:
        t0 = time.monotonic()
        link(env, user)
        enqueue_sync(SyncRequest(user, "linked", full=True, subscribe=True))
        worker.start()
        deadline = time.monotonic() + 60
        while not (repo.get_user(user) and repo.get_user(user).events_subscription_id):
            assert time.monotonic() < deadline, "the first sync and subscription did not happen"
            time.sleep(0.2)

        phases = {"subscribed": time.monotonic() - t0}
        sim.create_events(user, [{"subject": f"bulk {i}", **_slot(rng)} for i in range(EVENTS)])
        phases["seeded"] = time.monotonic() - t0
        enqueue_sync(SyncRequest(user, "notification"))  # the bulk import's notification
        mutator = threading.Thread(target=_mutate, args=(sim, user, stop, rng), daemon=True)
        mutator.start()
        kills: list[float] = []
        for rows in KILL_AT:
            deadline = time.monotonic() + 60
            while len(repo.event_ids(user, sim.default_calendar_id(user))) < rows:
                assert time.monotonic() < deadline, f"the backfill did not reach {rows} rows"
                time.sleep(0.05)
            worker.kill()
            kills.append(time.monotonic())
            phases[f"kill at {rows}"] = kills[-1] - t0
            worker.start()
        restarted = time.monotonic()
        time.sleep(3)  # changes keep arriving after the last restart too
        stop.set()
        mutator.join()

        deadline = restarted + 120
        while (left := _differences(sim, settings, repo, user)) and time.monotonic() < deadline:
            time.sleep(1)
        converged = time.monotonic()
        lines = [t for t, _ in worker.lines if kills[0] <= t <= converged]
        gaps = [b - a for a, b in itertools.pairwise(lines)]
        print(f"\n{EVENTS} events, 3 SIGKILLs: converged {converged - restarted:.1f}s after the last restart,"
              f" longest log silence {max(gaps, default=0):.1f}s (lease {LEASE_SECONDS}s);"
              f" {', '.join(f'{k} {v:.1f}s' for k, v in phases.items())}")
        if os.environ.get("RESILIENCE_LOG"):
            Path(os.environ["RESILIENCE_LOG"]).write_text("\n".join(f"{t - restarted:8.2f} {line}"
                                                                    for t, line in worker.lines))
        assert left == 0, f"{left} rows differ 2 minutes after the last restart"
        assert max(gaps, default=0) <= LEASE_SECONDS, "a stall longer than the lease without a log line"
    finally:
        stop.set()
        worker.stop()
        receiver.stop()

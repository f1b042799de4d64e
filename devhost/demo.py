"""`make run` without credentials: the whole loop against the Graph simulator.

1. start the simulator with a demo tenant (two users, five calendars, recurring events);
2. point the app at it (authority, Graph URL, client id, secret in the local store, CA file)
   with its data under .data/demo/ (wiped at each start), and record those settings in
   .data/demo/local.settings.json, where `python -m shared ...` finds them (shared/local_settings.py);
3. start the local Functions host and link both users through the real sign-in flow
   (GET /api/oauth/start -> the simulator's authorize redirect -> /api/oauth/callback);
4. the queued first syncs backfill into SQLite (progress in the log) and subscribe, one
   subscription per calendar;
5. then keep changing events in every calendar (default and the others) and show each
   change arriving as a row, with the calendar and its notification-to-row latency.
   RENEWAL_RESYNC is off (and the renewal timer's first run is minutes away): every row
   arrives through its calendar's notification.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devhost.host import DevHost
    from graphsim import GraphSimulator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data" / "demo"


def _slot(days: int, hour: int) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today + dt.timedelta(days=days, hours=hour)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=45)).strftime(fmt), "timeZone": "UTC"}}


# Settings the demo does not use and that would send it elsewhere (a real queue, Key Vault, ...)
# when local.settings.json has them without a CLIENT_ID.
_NOT_IN_DEMO = ("QUEUE_CONNECTION_STRING", "QUEUE_ACCOUNT_URL", "KEY_VAULT_URL", "PG_DSN",
                "TABLES_CONNECTION_STRING", "TABLES_ACCOUNT_URL", "BLOBS_ACCOUNT_URL", "AUTHORIZE_URL",
                "TOKEN_URL", "APP_ONLY", "APP_ONLY_USERS", "APP_ONLY_GROUP")


def configure(sim: GraphSimulator, demo: dict[str, Any], base_url: str) -> dict[str, str]:
    """Settings for the app, as local.settings.json would give them; returns them."""
    from shared.config import HOST_STORAGE

    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir(parents=True)
    ca_file = DATA / "graphsim-ca.pem"  # outlives nothing: the simulator's CA, for a second terminal too
    shutil.copyfile(sim.ca_file, ca_file)
    values = {
        "AUTHORITY_HOST": sim.base_url, "TENANT": demo["tenant_id"], "GRAPH_BASE_URL": sim.graph_url,
        "CLIENT_ID": demo["client_id"], "REQUESTS_CA_BUNDLE": str(ca_file), "APP_BASE_URL": base_url,
        "DATABASE_BACKEND": "sqlite", "SQLITE_PATH": str(DATA / "calendar.db"),
        "LOCAL_QUEUE_PATH": str(DATA / "queue.db"), "LOCAL_SECRETS_DIR": str(DATA / "secrets"),
        "GRAPH_PAGE_SIZE": "50", "RENEWAL_RESYNC": "false",
    }
    for name in [*_NOT_IN_DEMO, *(k for k in os.environ if k == HOST_STORAGE or k.startswith(HOST_STORAGE + "__"))]:
        os.environ.pop(name, None)
    os.environ.update(values)
    from shared import runtime
    from shared.secrets import CLIENT_SECRET, open_secret_store

    runtime.reset()
    open_secret_store().set(CLIENT_SECRET, demo["client_secret"])
    return values


def start_simulator(port: int) -> tuple[GraphSimulator, dict[str, Any]]:
    from graphsim import GraphSimulator
    from graphsim.demo import seed

    sim = GraphSimulator(allow_http_notification_urls=True).start()   # the local host serves plain http
    demo = seed(sim)
    redirect = f"http://127.0.0.1:{port}/api/oauth/callback"
    if redirect != demo["redirect_uri"]:
        demo["client_id"], demo["client_secret"] = sim.register_app(demo["tenant_id"], redirect_uris=[redirect])
    return sim, demo


def sign_in(sim: GraphSimulator, tenant: str, base_url: str, user_id: str) -> None:
    """The browser's part of the sign-in: start -> authorize (consent) -> callback."""
    import requests

    sim.set_consent_user(tenant, user_id)
    start = requests.get(f"{base_url}/api/oauth/start", allow_redirects=False, timeout=10)
    start.raise_for_status()
    consent = requests.get(start.headers["Location"], verify=sim.ca_file, allow_redirects=False, timeout=10)
    callback = requests.get(consent.headers["Location"], allow_redirects=False, timeout=30)
    if callback.status_code != 200:
        raise RuntimeError(f"sign-in of {user_id} failed: {callback.status_code}")


class Changer:
    """Changes events in the simulator and reports when each change is a row.

    `stop` ends the wait for a row at once: SIGTERM must not wait out a change's 30 s (whoever stops
    the demo, `make` or a test, gives up and kills it, leaving it unreaped)."""

    def __init__(self, sim: GraphSimulator, users: dict[str, str], say: Callable[[str], None],
                 stop: threading.Event) -> None:
        self.sim, self.users, self.say, self.stop = sim, users, say, stop
        self.rnd = random.Random()

    def _rows(self, user: str) -> dict[str, dict[str, Any]]:
        from shared.storage import open_repository

        return {e.microsoft_event_id: {**(e.data or {}), "_calendar": e.microsoft_calendar_id}
                for e in open_repository().list_events(user) if e.microsoft_event_id}  # the key: always set

    def _calendar_names(self, user: str) -> dict[str, str]:
        return {c.id: c.name for c in self.sim.store.mailbox(user).calendars.values()}

    def _latency(self, since: float, row_at: float) -> str:
        deliveries = [r for r in self.sim.deliveries if r.get("time", 0) >= since and r.get("ok")]
        if not deliveries:
            return f"change-to-row {1000 * (row_at - since):.0f} ms"
        first = min(r["time"] - r.get("elapsed_ms", 0) / 1000 for r in deliveries)
        return f"notification-to-row {1000 * (row_at - first):.0f} ms, change-to-row {1000 * (row_at - since):.0f} ms"

    def tour(self) -> None:
        """One new event in every calendar of every user: each calendar's notification path, shown."""
        for name, user in sorted(self.users.items()):
            for calendar_id in sorted(self._calendar_names(user), key=lambda c: self._calendar_names(user)[c]):
                if self.stop.is_set():
                    return
                self.one(name, calendar_id, "create")

    def one(self, name: str | None = None, calendar_id: str | None = None, kind: str | None = None) -> None:
        if name is None:
            name = self.rnd.choice(sorted(self.users))
        user = self.users[name]
        calendars = self._calendar_names(user)
        calendar_id = calendar_id or self.rnd.choice(sorted(calendars))
        rows = {i: d for i, d in self._rows(user).items()
                if d.get("type") == "singleInstance" and d["_calendar"] == calendar_id}
        kind = kind or self.rnd.choice(["create", "update", "update", "delete"] if rows else ["create"])
        at = time.time()
        if kind == "create":
            subject = f"Demo meeting {self.rnd.randint(100, 999)}"
            event_id = self.sim.create_event(user, calendar_id=calendar_id, subject=subject,
                                             **_slot(self.rnd.randint(0, 20), self.rnd.randint(8, 17)))["id"]
            done = lambda r: event_id in r  # noqa: E731
        elif kind == "update":
            event_id = self.rnd.choice(sorted(rows))
            subject = f"{rows[event_id]['subject'].split(' (')[0]} (moved {self.rnd.randint(1, 99)})"
            self.sim.update_event(user, event_id, subject=subject)
            done = lambda r: r.get(event_id, {}).get("subject") == subject  # noqa: E731
        else:
            event_id = self.rnd.choice(sorted(rows))
            subject = rows[event_id]["subject"]
            self.sim.delete_event(user, event_id)
            done = lambda r: event_id not in r  # noqa: E731
        where = calendars[calendar_id][:10]
        deadline = time.time() + 30
        while time.time() < deadline:
            if done(self._rows(user)):
                self.say(f"{name:<6} {where:<10} {kind:<7} {subject!r:<36} replicated: "
                         f"{self._latency(at, time.time())}")
                return
            if self.stop.wait(0.05):
                return  # stopping: this change's row is not waited for
        self.say(f"{name:<6} {where:<10} {kind:<7} {subject!r}: not replicated within 30 s (see the log)")


def run(host_factory: Callable[[], DevHost], port: int, stop: threading.Event, interval: float = 3.0,
        start: Callable[[DevHost], object] | None = None) -> int:
    """The whole demo; returns when `stop` is set. `start(host)` starts the host (default host.start())."""
    from shared.local_settings import DEMO_SETTINGS, write_demo_settings

    def say(text: str) -> None:
        print(text, flush=True)

    say("No CLIENT_ID in local.settings.json: demo against the Graph simulator (Ctrl-C stops).")
    sim, demo = start_simulator(port)
    host = None
    try:
        base_url = f"http://127.0.0.1:{port}"
        values = configure(sim, demo, base_url)
        host = host_factory()
        (start or (lambda h: h.start()))(host)
        write_demo_settings(values, {"base_url": base_url, "graph_simulator": sim.graph_url})
        from devhost.__main__ import describe_host

        say("\n".join(describe_host(host)))
        say(f"Graph simulator on {sim.graph_url}; demo tenant {demo['tenant_id']}")
        say(f"Rows in {values['SQLITE_PATH']} (SQLite; wiped at each start). In another terminal, "
            f"`python -m shared status|doctor|rows|action ...` use this demo ({DEMO_SETTINGS.name} "
            f"in {DEMO_SETTINGS.parent}).")
        users = {upn.split("@")[0].capitalize(): uid for upn, uid in demo["users"].items()}
        for name, uid in users.items():
            sign_in(sim, demo["tenant_id"], base_url, uid)
            say(f"{name} signed in through /api/oauth/start -> authorize -> /api/oauth/callback")
        started = time.monotonic()
        host.drain(timeout=120)
        from shared.storage import open_repository

        repo = open_repository()
        for name, uid in users.items():
            counts = repo.counts(uid)
            say(f"{name}: backfilled {counts['microsoft_calendar_v1']} calendars, "
                f"{counts['microsoft_calendar_event_v1']} event rows")
        say(f"backfill done in {time.monotonic() - started:.1f}s; subscriptions: "
            f"{len(sim.list_subscriptions())}, one per calendar (Graph validated {base_url}/api/graph/notifications)")
        say("Now changing events in every calendar (RENEWAL_RESYNC=false: only notifications bring them); "
            "each line is a change seen as a row:")
        changer = Changer(sim, users, say, stop)
        changer.tour()
        while not stop.wait(interval):
            try:
                changer.one()
            except Exception as exc:  # the demo keeps going; the log has the details
                say(f"change failed: {type(exc).__name__}: {exc}")
    finally:
        if host is not None:
            host.stop()
        sim.stop()
    return 0

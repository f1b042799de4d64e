"""Acceptance 1: a 5,000-event mailbox through the whole loop (sign-in, backfill, subscription,
notifications over HTTP, queue, worker), on SQLite + the embedded queue and on PostgreSQL + Azurite."""

from __future__ import annotations

import random
import time

import pytest

from tests.sync.world import slot, weekly


def _seed(world, user: str, total: int = 5010) -> dict:
    sim = world.sim
    team = sim.create_calendar(user, "Team")
    travel = sim.create_calendar(user, "Travel")
    rnd = random.Random(7)
    series = [sim.create_event(user, subject=f"weekly {i}", **weekly(rnd.randint(-80, 0), 52))["id"]
              for i in range(10)]
    series.append(sim.create_event(user, calendar_id=team["id"], subject="team weekly", **weekly(-20))["id"])
    created = len(world.expected(user)["events"])
    split = {None: 0.6, team["id"]: 0.3, travel["id"]: 0.1}
    for calendar_id, share in split.items():
        count = int((total - created) * share)
        bodies = [{"subject": f"event {i}", **slot(rnd.randint(-85, 360), rnd.randint(6, 18))} for i in range(count)]
        sim.create_events(user, bodies, calendar_id=calendar_id)
    return {"team": team["id"], "travel": travel["id"], "series": series}


def _settle(world, host, user, timeout: float = 60.0) -> None:
    """Wait until every notification was delivered and handled and the tables equal the simulator."""
    deadline = time.monotonic() + timeout
    while True:
        world.sim.flush_notifications(timeout=10)
        assert host.drain(timeout=max(1.0, deadline - time.monotonic()))
        try:
            world.assert_converged(user)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _run(world) -> None:
    from devhost.host import DevHost

    sim = world.sim
    alice = world.user("Alice")
    ids = _seed(world, alice)
    assert len(world.expected(alice)["events"]) >= 5000
    from shared.queues import SYNC_QUEUE, open_queue

    open_queue(SYNC_QUEUE).clear()  # the session's Azurite is shared: no other test's request runs here
    host = DevHost(port=0, timers=False, queue_options={"visibility_timeout": 120}).start()
    try:
        world.configure(GRAPH_PAGE_SIZE="100")
        world.register(host.base_url)
        started = time.monotonic()
        world.link(alice)
        assert host.drain(timeout=120)
        backfill = time.monotonic() - started
        world.assert_converged(alice)
        subs = [s for s in sim.list_subscriptions() if s["resource"].endswith("/events")]
        assert subs, "the first sync creates the events subscription"
        print(f"backfill of {len(world.actual(alice)['events'])} rows: {backfill:.1f}s")

        primary = sim.default_calendar_id(alice)
        rows = world.expected(alice)["events"]
        singles = [i for i, (cal, d) in rows.items() if d["type"] == "singleInstance" and cal == primary]
        team_rows = [i for i, (cal, d) in rows.items() if d["type"] == "singleInstance" and cal == ids["team"]]
        sim.create_event(alice, subject="created", **slot(3))
        sim.create_event(alice, calendar_id=ids["travel"], subject="created in travel", **slot(4))
        sim.update_event(alice, singles[0], subject="updated")
        sim.update_event(alice, team_rows[0], subject="updated in team")
        sim.delete_event(alice, singles[1])
        sim.delete_event(alice, team_rows[1])
        sim.cancel_event(alice, singles[2])
        sim.move_event(alice, singles[3], ids["team"], immutable_ids=True)
        sim.move_event(alice, team_rows[2], primary)
        sim.update_event(alice, ids["series"][0], subject="series renamed")
        occurrences = [i for i, (_, d) in world.expected(alice)["events"].items()
                       if d.get("seriesMasterId") == ids["series"][1]]
        sim.update_event(alice, occurrences[0], subject="exception")
        sim.delete_event(alice, occurrences[1])
        sim.delete_event(alice, ids["series"][2])
        _settle(world, host, alice)
    finally:
        host.stop()


@pytest.mark.slow
def test_five_thousand_events_sqlite_embedded_queue(world):
    world.configure(DATABASE_BACKEND="sqlite")
    _run(world)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.azurite
def test_five_thousand_events_postgres_azurite(world, pg_dsn, azurite):
    # The queue as under `func start`: the host's storage, which the queue trigger reads too.
    world.configure(DATABASE_BACKEND="postgres", PG_DSN=pg_dsn, AzureWebJobsStorage=azurite)
    _run(world)

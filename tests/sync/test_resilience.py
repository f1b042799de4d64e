"""Issue 12, items 6 and 7: leases that outlive a long sync but not a dead worker, coverage
that a resumed round cannot fake, and a throttled mailbox that releases its worker."""

from __future__ import annotations

import logging
import time

import pytest

from shared.queues.messages import SyncRequest, enqueue_sync
from shared.storage.sqlite import SqliteRepository
from shared.sync import lock
from tests.sync.crash import SimulatedCrash
from tests.sync.world import slot


@pytest.fixture
def repo(tmp_path):
    repository = SqliteRepository(tmp_path / "leases.db")
    repository.ensure_schema()
    yield repository
    repository.close()


def test_the_lease_is_renewed_while_the_sync_runs(repo):
    taken_by_other: list[bool] = []
    with lock.hold("u1", repo, lease_seconds=0.6):
        for _ in range(6):  # 1.8 s: three lease lifetimes
            time.sleep(0.3)
            taken_by_other.append(repo.acquire_lease("sync:u1", "another-instance", 0.6))
    assert not any(taken_by_other)
    assert repo.acquire_lease("sync:u1", "another-instance", 0.6)  # released at the end


def test_a_dead_owners_lease_expires_quickly_and_the_wait_is_logged(repo, caplog):
    assert repo.acquire_lease("sync:u2", "killed-worker", 1.0)  # its owner never renews nor releases
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="shared.sync"), lock.hold("u2", repo, lease_seconds=1.0):
        waited = time.monotonic() - started
    assert 0.5 < waited < 5
    assert any("waiting for lease sync:u2" in r.getMessage() for r in caplog.records)


def test_a_resumed_round_does_not_cover_requests_received_after_the_killed_sync_began(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    sim.create_events(alice, [{"subject": f"bulk {i}", **slot(i % 200 - 50, 8 + i % 8)} for i in range(400)])
    world.link(alice)
    with pytest.raises(SimulatedCrash):
        world.drain(crash_after_pages=4)  # killed mid-backfill: the round's nextLink is stored
    victim = world.repo.list_events(alice)[0].microsoft_event_id
    sim.delete_event(alice, victim)  # a change after the killed round began ...
    enqueue_sync(SyncRequest(alice, "notification"), world.settings)  # ... and its notification
    time.sleep(0.01)
    outcomes = world.drain()  # the retried backfill message is still invisible: only the notification
    assert [o.status for o in outcomes] == ["synced"]
    # That sync resumed the killed round, whose snapshot predates the deletion. Counted as starting
    # when it ran, it covered the notification and the row stayed until the next renewal run; now it
    # knows the round began earlier and makes one more pass for the notification it was asked for.
    world.assert_converged(alice)


def test_a_throttled_mailbox_requeues_its_sync_instead_of_holding_the_worker(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    sim.create_event(alice, subject="one", **slot(1))
    world.link(alice)
    world.drain()
    sim.create_event(alice, subject="two", **slot(2))
    sim.throttle.block_mailbox(alice, 120)
    enqueue_sync(SyncRequest(alice, "notification"), world.settings)
    started = time.monotonic()
    outcomes = world.drain()
    assert time.monotonic() - started < 10  # not 120 s (or 5 x 120 s) asleep in the worker
    assert [o.status for o in outcomes] == ["deferred"]
    queue = world.queue()
    assert queue.depth() == 1 and queue.receive(16) == []  # back on the queue, invisible for Retry-After


def test_a_short_retry_after_is_still_waited_for_in_the_worker(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    world.link(alice)
    world.drain()
    sim.create_event(alice, subject="soon", **slot(2))
    sim.throttle.block_mailbox(alice, 1.5)
    enqueue_sync(SyncRequest(alice, "notification"), world.settings)
    assert [o.status for o in world.drain()] == ["synced"]
    world.assert_converged(alice)

"""Leases: one holder at a time across repository instances, expiry, release (all backends)."""

from __future__ import annotations

import time

from shared.storage import Repository
from tests.storage.conftest import make_repository, race


def test_one_holder_until_release(repo: Repository):
    assert repo.acquire_lease("sync:u1", "worker-a", 60)
    assert not repo.acquire_lease("sync:u1", "worker-b", 60)
    assert repo.acquire_lease("sync:u1", "worker-a", 60)  # the holder may extend
    assert repo.acquire_lease("sync:u2", "worker-b", 60)  # other names are independent
    repo.release_lease("sync:u1", "worker-b")  # not the holder: no effect
    assert not repo.acquire_lease("sync:u1", "worker-b", 60)
    repo.release_lease("sync:u1", "worker-a")
    assert repo.acquire_lease("sync:u1", "worker-b", 60)


def test_an_expired_lease_can_be_taken_over(repo: Repository):
    assert repo.acquire_lease("sync:u1", "crashed-worker", 0.2)
    assert not repo.acquire_lease("sync:u1", "worker-b", 60)
    time.sleep(0.35)
    assert repo.acquire_lease("sync:u1", "worker-b", 60)
    repo.release_lease("sync:u1", "crashed-worker")  # the late release must not free worker-b's lease
    assert not repo.acquire_lease("sync:u1", "worker-c", 60)


def test_contending_instances_get_exactly_one_winner(repo: Repository, request, tmp_path):
    """Eight threads, each with its own repository instance (like separate workers), race for one lease."""
    backend = request.node.callspec.params["repo"]
    shared_tables = getattr(repo, "prefix", None)  # Table Storage: the same tables as `repo`
    others = [make_repository(backend, request, tmp_path, prefix=shared_tables) for _ in range(8)]
    try:
        winners = race(others, lambda index, worker: worker.acquire_lease("sync:busy", f"w{index}", 60))
    finally:
        for other in others:
            other.close()
    assert len(winners) == 1, winners

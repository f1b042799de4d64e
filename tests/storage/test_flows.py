"""Used sign-in states: claimed once across instances, markers swept after expiry (all three backends)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.storage import Repository
from tests.storage.conftest import make_repository, race


def later(seconds: float = 600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_a_state_is_claimed_once(repo: Repository):
    assert repo.claim_flow("k1", later()) is True
    assert repo.claim_flow("k1", later()) is False
    assert repo.claim_flow("k2", later()) is True
    for bad in ("", "x" * 129):
        with pytest.raises(ValueError):
            repo.claim_flow(bad, later())


def test_expired_markers_are_swept(repo: Repository):
    repo.claim_flow("old", later(0.3))
    repo.claim_flow("kept", later())
    time.sleep(0.4)
    repo.claim_flow("fresh", later())  # a claim sweeps what expired
    assert repo._sweep_flows(int(time.time() * 1000)) == 0  # nothing expired is left
    assert repo.claim_flow("kept", later()) is False


def test_eight_concurrent_claimers_one_winner(repo: Repository, request, tmp_path):
    """Eight repository instances (like separate app instances) claim the same state at once."""
    backend = request.node.callspec.params["repo"]
    others = [make_repository(backend, request, tmp_path, prefix=getattr(repo, "prefix", None)) for _ in range(8)]
    try:
        for round_ in range(3):
            winners = race(others, lambda _, claimer, key=f"contended-{round_}": claimer.claim_flow(key, later()))
            assert len(winners) == 1, winners
    finally:
        for other in others:
            other.close()

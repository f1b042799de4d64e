"""Sign-ins in flight: single use across instances, expiry, sweeping (all three backends)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.storage import Repository
from tests.storage.conftest import make_repository, race

FLOW = {"state": "s", "code_verifier": "v" * 43, "nonce": "n", "auth_uri": "https://login/authorize?x=1"}


def later(seconds: float = 600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_a_flow_is_taken_once(repo: Repository):
    repo.put_flow("k1", {"flow": FLOW, "microsoft_user_id": "u"}, later())
    repo.put_flow("k2", {"flow": FLOW}, later())
    assert repo.take_flow("k1") == {"flow": FLOW, "microsoft_user_id": "u"}
    assert repo.take_flow("k1") is None
    assert repo.take_flow("unknown") is None and repo.take_flow("") is None
    assert repo.take_flow("k2") == {"flow": FLOW}
    with pytest.raises(ValueError):
        repo.put_flow("k3", {"blob": "x" * 40_000}, later())


def test_expired_flows_are_never_returned_and_are_swept(repo: Repository):
    repo.put_flow("old", {"flow": FLOW}, later(0.3))
    time.sleep(0.4)
    assert repo.take_flow("old") is None  # expired: refused (and gone)
    repo.put_flow("stale", {"flow": FLOW}, later(0.3))
    time.sleep(0.4)
    repo.put_flow("fresh", {"flow": FLOW}, later())  # a put sweeps what expired
    assert repo._take_flow("stale") is None
    assert repo.take_flow("fresh") == {"flow": FLOW}


def test_eight_concurrent_takers_one_winner(repo: Repository, request, tmp_path):
    """Eight repository instances (like separate app instances) take the same flow at once."""
    backend = request.node.callspec.params["repo"]
    others = [make_repository(backend, request, tmp_path, prefix=getattr(repo, "prefix", None)) for _ in range(8)]
    try:
        for round_ in range(3):
            repo.put_flow(f"contended-{round_}", {"flow": FLOW}, later())
            winners = race(others, lambda _, taker, key=f"contended-{round_}": taker.take_flow(key) is not None)
            assert len(winners) == 1, winners
    finally:
        for other in others:
            other.close()

"""Counters (webhook delivery figures) and the user profile in the outbox, on all three backends."""

from __future__ import annotations

import threading

import pytest

from shared.storage import Repository, schema
from tests.storage.test_contract import USER


def test_counters_add_up_under_concurrent_writers(repo: Repository):
    assert repo.counter("webhook:crm:delivered") == 0

    def add() -> None:
        for _ in range(5):
            repo.increment("webhook:crm:delivered")

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert repo.increment("webhook:crm:delivered", 2) == 22
    assert repo.counter("webhook:crm:delivered") == 22 and repo.counter("webhook:crm:retried") == 0
    assert repo.pending_changes(USER) == []  # a counter is not a user's outbox


def test_counter_names_cannot_be_user_ids(repo: Repository):
    with pytest.raises(ValueError):
        repo.increment(USER)


def test_the_user_profile_is_recorded_when_it_changes(repo: Repository):
    repo.upsert_user(USER, {"id": USER, "displayName": "A"})
    repo.upsert_user(USER, {"id": USER, "displayName": "A"})
    repo.upsert_user(USER, {"id": USER, "displayName": "B"})
    repo.set_events_subscription(USER, "sub-1", None)  # managed columns are not profile changes
    assert [(e.table, e.remote_id, e.kind) for e in repo.pending_changes(USER)] == [
        (schema.USERS.name, USER, "created"), (schema.USERS.name, USER, "updated")]


def test_the_change_sequence_never_goes_backwards_across_a_relink(repo: Repository):
    repo.upsert_user(USER, {"id": USER, "displayName": "A"})
    (before,) = repo.pending_changes(USER)
    repo.delete_user(USER)                                   # UNLINKED
    repo.upsert_user(USER, {"id": USER, "displayName": "A"})  # LINKED again
    (after,) = repo.pending_changes(USER)
    assert after.seq > before.seq

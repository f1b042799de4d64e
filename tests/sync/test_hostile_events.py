"""Issue 12, item 3 end to end: hostile events in a mailbox never stop its sync.

Graph sends an unpaired surrogate as a JSON `\\ud800` escape, a NUL as `\\u0000`,
and subjects of any length. Before, one such event failed every page write,
the sync went to the poison queue and the mailbox never got its subscription.
Now the mailbox syncs, its other events are stored, the subscription is made,
and the hostile rows say what had to be degraded.
"""

from __future__ import annotations

import uuid

import pytest

from shared.storage.textsafety import DEGRADED_KEY
from tests.sync.world import slot

HOSTILE = {
    "lone surrogates": {"subject": "a\ud800b", "body": {"contentType": "text", "content": "x\udc00y"},
                        "location": {"displayName": "room \ud83d"},
                        "attendees": [{"emailAddress": {"name": "Zo\udfffë", "address": "z@example.com"},
                                       "type": "required"}]},
    "nul": {"subject": "a\x00b", "body": {"contentType": "text", "content": "x\x00y"}},
    "long subject": {"subject": "Ω" * 40_000},
}


def _backend(world, backend: str, request) -> None:
    if backend == "postgres":
        world.configure(DATABASE_BACKEND="postgres", PG_DSN=request.getfixturevalue("pg_dsn"))
    elif backend == "tables":
        world.configure(DATABASE_BACKEND="tables", TABLES_CONNECTION_STRING=request.getfixturevalue("azurite"),
                        TABLE_PREFIX=f"h{uuid.uuid4().hex[:10]}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "tables"])
def test_a_mailbox_with_hostile_events_syncs_and_subscribes(world, backend, request):
    from devhost.host import DevHost

    _backend(world, backend, request)
    sim = world.sim
    alice = world.user("Alice")
    hostile = {name: sim.create_event(alice, **fields, **slot(1 + n))["id"]
               for n, (name, fields) in enumerate(HOSTILE.items())}
    plain = [sim.create_event(alice, subject=f"plain {n}", **slot(5 + n))["id"] for n in range(5)]
    host = DevHost(port=0, timers=False).start()
    try:
        world.register(host.base_url)
        world.link(alice)
        assert host.drain(timeout=60)
        rows = {e.microsoft_event_id: e for e in world.repo.list_events(alice)}
        assert set(plain) | set(hostile.values()) <= set(rows)
        user = world.repo.get_user(alice)
        assert user.events_subscription_id in {s["id"] for s in sim.list_subscriptions()}
        assert world.repo.get_account(alice).last_sync_error is None
        long = rows[hostile["long subject"]]
        assert long.data["subject"] == "Ω" * 40_000
        lone = rows[hostile["lone surrogates"]]
        assert DEGRADED_KEY in lone.data and "\ud800" not in lone.subject
        if backend != "postgres":
            assert lone.data["subject"] == "a\ud800b"
    finally:
        host.stop()

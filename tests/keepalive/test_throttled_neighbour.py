"""Issue 12, item 7 / acceptance 4: one throttled mailbox does not stall the others.

Alice's mailbox answers 429 with Retry-After 120 s for two minutes; her syncs are
re-queued instead of sleeping in the workers, so Bob's change, notified by the
simulator over HTTP and handled by the devhost's queue worker, reaches his row
within 10 s.
"""

from __future__ import annotations

import socket
import time

from tests.keepalive.conftest import CALLBACK, link
from tests.sync.world import slot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_another_mailboxs_change_arrives_within_10_s_while_one_is_throttled(graphsim, app_env, monkeypatch):
    from devhost import DevHost
    from shared.queues.messages import SyncRequest, enqueue_sync
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository

    sim = graphsim
    monkeypatch.setattr(sim.subscriptions, "validation_timeout", 10.0)
    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
    alice, bob = (sim.create_user(tenant, display_name=n, user_principal_name=f"{n}@{tenant}.test")
                  for n in ("alice", "bob"))
    port = _free_port()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    settings = app_env(AUTHORITY_HOST=sim.base_url, TENANT=tenant, GRAPH_BASE_URL=sim.graph_url,
                       CLIENT_ID=client_id, APP_BASE_URL=f"http://127.0.0.1:{port}")
    open_secret_store(settings).set(CLIENT_SECRET, secret)
    repo = open_repository()
    env = type("Env", (), {"sim": sim, "tenant": tenant, "client_id": client_id, "secret": secret})()
    host = DevHost(port=port, timers=False, queues=True, poll_interval=0.05).start()
    try:
        for user in (alice, bob):
            link(env, user)
            enqueue_sync(SyncRequest(user, "linked", full=True, subscribe=True))
        assert host.drain(timeout=60)
        assert all(u.events_subscription_id for u in repo.list_users())

        sim.throttle.block_mailbox(alice, 120)
        for n in range(12):  # Alice keeps changing: notifications, and syncs that would wait 120 s each
            sim.create_event(alice, subject=f"alice {n}", **slot(1 + n))
            enqueue_sync(SyncRequest(alice, "notification"))
        time.sleep(1.0)
        made = time.monotonic()
        event = sim.create_event(bob, subject="bob's change", **slot(2))
        while time.monotonic() - made < 10:
            if any(e.microsoft_event_id == event["id"] for e in repo.list_events(bob)):
                break
            time.sleep(0.1)
        arrived = time.monotonic() - made
        print(f"\nbob's change reached his row {arrived:.1f}s after it was made, alice throttled")
        assert arrived < 10
        assert len(repo.list_events(alice)) == 0  # her changes wait for her quota, re-queued
    finally:
        sim.throttle.reset()
        host.stop()

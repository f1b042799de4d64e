"""Acceptance 1: the change feed reaches HTTPS endpoints, signed, once per change after de-duplication.

The whole app runs against the Graph simulator: the devhost serves the
receivers and runs the sync worker and the webhook delivery function; three
local HTTPS receivers (certificates from the simulator's CA) get the feed.
`good` answers 200, `flaky` answers 503 (Retry-After: 1) twice then 200,
`broken` (deletions only) answers 500 until it is fixed; its deliveries end in
the dead-letter queue and `replay-webhooks` delivers them.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest

from tests.feed.contract import drain
from tests.feed.receiver import WebhookReceiver
from tests.keepalive.conftest import CALLBACK, link


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slot(days: int) -> dict:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=days)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"}}


def _settle(sim, host, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the app did not settle"
        sim.flush_notifications(timeout=10)
        assert host.drain(timeout=max(1.0, deadline - time.monotonic()))
        quiet = quiet + 1 if sim.flush_notifications(timeout=0.5) and host.drain(timeout=1) else 0
        time.sleep(0.2)


@pytest.fixture
def receivers(graphsim):
    context = graphsim.certs.server_context()
    flaky_answers = {0: (503, {"Retry-After": "1"}), 1: (503, {"Retry-After": "1"})}
    made = {
        "good": WebhookReceiver("secret-good", context),
        "flaky": WebhookReceiver("secret-flaky", context, lambda n: flaky_answers.get(n, (200, {}))),
        "broken": WebhookReceiver("secret-broken", context, lambda n: (500, {})),
    }
    yield made
    for receiver in made.values():
        receiver.close()


def test_signed_webhooks_end_to_end(graphsim, app_env, monkeypatch, receivers):
    from devhost import DevHost
    from shared.cli import main
    from shared.ops.status import collect_status
    from shared.queues import OUTBOUND_QUEUE, WEBHOOK_QUEUE, open_queue, poison_queue_name
    from shared.queues.messages import SyncRequest, enqueue_sync
    from shared.secrets import CLIENT_SECRET, open_secret_store

    sim = graphsim
    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
    user = sim.create_user(tenant, display_name="Webhook", user_principal_name=f"w@{tenant}.test")
    port = _free_port()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    hooks = [{"name": "good", "url": receivers["good"].url},
             {"name": "flaky", "url": receivers["flaky"].url, "users": [user]},
             {"name": "broken", "url": receivers["broken"].url, "kinds": ["row.deleted"]}]
    settings = app_env(AUTHORITY_HOST=sim.base_url, TENANT=tenant, GRAPH_BASE_URL=sim.graph_url,
                       CLIENT_ID=client_id, APP_BASE_URL=f"http://127.0.0.1:{port}", WEBHOOKS=json.dumps(hooks),
                       WEBHOOK_MAX_ATTEMPTS="3", WEBHOOK_BACKOFF_SECONDS="1")
    store = open_secret_store(settings)
    store.set(CLIENT_SECRET, secret)
    for name in receivers:
        store.set(f"webhook-{name}", f"secret-{name}")
    seeded = sim.create_events(user, [{"subject": f"seed {n}", **_slot(n + 1)} for n in range(3)])
    env = type("Env", (), {"sim": sim, "tenant": tenant, "client_id": client_id, "secret": secret})()
    link(env, user, "delegated")

    host = DevHost(port=port, timers=False, queues=True, poll_interval=0.05,
                   queue_options={"visibility_timeout": 1}).start()
    try:
        enqueue_sync(SyncRequest(user, "linked", full=True, subscribe=True))
        _settle(sim, host)
        added = sim.create_event(user, subject="added", **_slot(5))["id"]        # the scripted scenario
        sim.update_event(user, seeded[0], subject="renamed")
        sim.delete_event(user, seeded[1])
        _settle(sim, host)

        feed = {m["id"]: m for m in drain(OUTBOUND_QUEUE, settings)}           # each one schema-validated
        changes = {(m["remote_id"], m["type"]) for m in feed.values()}
        assert {(added, "row.created"), (seeded[0], "row.updated"), (seeded[1], "row.deleted")} <= changes
        deletions = {i for i, m in feed.items() if m["type"] == "row.deleted"}

        good, flaky, broken = receivers["good"], receivers["flaky"], receivers["broken"]
        for receiver in (good, flaky, broken):
            assert all(r["signature_ok"] for r in receiver.requests), "every signature verifies"
        assert good.unique() == feed, "every row change exactly once after de-duplication"
        assert len(good.accepted) == len(feed)
        assert flaky.unique() == feed, "503 twice then 200 still delivers everything"
        first = flaky.requests[0]
        retry = next(r for r in flaky.requests[1:] if r["id"] == first["id"])
        assert retry["at"] - first["at"] >= 1.0, "Retry-After honoured"
        assert broken.accepted == [] and len(broken.requests) == 3 * len(deletions)

        dead = open_queue(poison_queue_name(WEBHOOK_QUEUE))
        assert dead.depth() == len(deletions)
        figures = collect_status()["webhooks"]
        assert figures["good"]["delivered"] == len(feed) and figures["good"]["retried"] == 0
        assert figures["flaky"]["retried"] == 2 and figures["flaky"]["delivered"] == len(feed)
        assert figures["broken"]["dead_lettered"] == len(deletions) and figures["broken"]["delivered"] == 0

        broken.answer = lambda n: (200, {})                                     # the receiver is fixed
        assert main(["replay-webhooks"]) == 0
        assert host.drain(timeout=30)
        assert set(broken.unique()) == deletions and dead.depth() == 0
        assert collect_status()["webhooks"]["broken"]["delivered"] == len(deletions)
    finally:
        host.stop()

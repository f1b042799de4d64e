"""Every calendar in near real time: one subscription per calendar, one targeted delta per notification.

End to end: the simulator delivers notifications over real HTTP to the devhost
(the registered receivers), the devhost runs the queue-triggered worker. No
timer runs and RENEWAL_RESYNC is off, so a change only reaches its row through
its calendar's notification.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
import types
from typing import Any

import pytest

from shared.queues.messages import SyncRequest, enqueue_sync
from tests.keepalive.conftest import CALLBACK, link


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slot(days: int, hour: int) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0) + dt.timedelta(days=days)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"}}


def _repo():
    from shared.storage import open_repository

    return open_repository()


def _graph_requests(sim) -> int:
    """Graph requests only (the identity platform's token endpoints are not Graph)."""
    return sum(n for name, n in sim.counters().items() if "/v1.0/" in name)


@pytest.fixture
def live(graphsim, app_env, monkeypatch):
    """Alice (delegated) with Team and Travel besides her default calendar, replicated through the devhost."""
    from devhost import DevHost
    from shared.secrets import CLIENT_SECRET, open_secret_store

    sim = graphsim
    monkeypatch.setattr(sim.subscriptions, "validation_timeout", 10.0)
    tenant = sim.create_tenant()
    client_id, secret = sim.register_app(tenant, redirect_uris=[CALLBACK])
    alice = sim.create_user(tenant, display_name="Alice", user_principal_name=f"alice@{tenant}.test")
    calendars = {"default": sim.default_calendar_id(alice), "team": sim.create_calendar(alice, "Team")["id"],
                 "travel": sim.create_calendar(alice, "Travel")["id"]}
    for name, calendar_id in calendars.items():
        sim.create_events(alice, [{"subject": f"{name} {i}", **_slot(i, 9)} for i in range(3)], calendar_id=calendar_id)
    port = _free_port()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    settings = app_env(AUTHORITY_HOST=sim.base_url, TENANT=tenant, GRAPH_BASE_URL=sim.graph_url, CLIENT_ID=client_id,
                       APP_BASE_URL=f"http://127.0.0.1:{port}", RENEWAL_RESYNC="false")
    open_secret_store(settings).set(CLIENT_SECRET, secret)
    env = types.SimpleNamespace(sim=sim, tenant=tenant, client_id=client_id, secret=secret, settings=settings,
                                alice=alice, calendars=calendars)
    host = DevHost(port=port, timers=False, queues=True, poll_interval=0.02).start()
    env.host = host
    try:
        link(env, alice)
        enqueue_sync(SyncRequest(alice, "linked", full=True, subscribe=True))
        assert host.drain(timeout=60)
        yield env
    finally:
        host.stop()


def _wait_for(env, check, timeout: float = 20.0) -> float:
    """Seconds until `check(rows)` holds for Alice's replicated events (rows: id -> (calendar, data))."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = {e.microsoft_event_id: (e.microsoft_calendar_id, e.data) for e in _repo().list_events(env.alice)}
        if check(rows):
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError("the change did not reach its row through the notification path")


def test_every_calendar_has_its_own_subscription(live):
    sim, alice = live.sim, live.alice
    subs = [s for s in sim.subscriptions.subs.values() if s.user_id == alice]
    assert sorted(s.container for s in subs) == sorted(live.calendars.values())
    assert all(s.resource == f"me/calendars/{s.container}/events" for s in subs)
    rows = {r.microsoft_calendar_id: r for r in _repo().list_calendar_subscriptions(alice)}
    assert {c: r.subscription_id for c, r in rows.items()} == {s.container: s.id for s in subs}
    assert _repo().get_user(alice).events_subscription_id == rows[live.calendars["default"]].subscription_id


def test_a_change_in_each_of_three_calendars_arrives_by_notification(live):
    """Acceptance 1: default + two others, RENEWAL_RESYNC=false, no timer: each row through its notification."""
    sim, alice = live.sim, live.alice
    latencies = {}
    for name, calendar_id in live.calendars.items():
        created = sim.create_event(alice, calendar_id=calendar_id, subject=f"new in {name}", **_slot(2, 14))
        latencies[name] = _wait_for(live, lambda rows, i=created["id"], c=calendar_id: rows.get(i, ("",))[0] == c)
        updated = f"renamed in {name}"
        sim.update_event(alice, created["id"], subject=updated)
        _wait_for(live, lambda rows, i=created["id"], s=updated: rows.get(i, (None, {}))[1].get("subject") == s)
        sim.delete_event(alice, created["id"])
        _wait_for(live, lambda rows, i=created["id"]: i not in rows)
    print("change-to-row latency: " + ", ".join(f"{n} {1000 * s:.0f} ms" for n, s in latencies.items()))
    handled = [r for r in sim.deliveries if r.get("ok") and r["kind"] == "notification"]
    assert {n["subscriptionId"] for r in handled for n in r["value"]} == {
        s.id for s in sim.subscriptions.subs.values() if s.user_id == alice}, "each calendar notified on its own"


@pytest.mark.parametrize("tenant_delta", [True, False], ids=["delta", "listing-fallback"])
def test_one_changed_event_costs_at_most_two_graph_requests(live, monkeypatch, tenant_delta):
    """Acceptance 2: a changed event in a non-default calendar (and in the default one) costs its round only."""
    from shared.sync.events import DELTA_FLAG

    sim, alice = live.sim, live.alice
    monkeypatch.setattr(sim, "delta_other_calendars", tenant_delta)
    # The fixture's backfill found the simulator's default (no delta for other calendars) and remembered it;
    # a tenant that serves it starts from an account that has not been told otherwise.
    account = _repo().get_account(alice)
    assert (account.extra or {}).get(DELTA_FLAG, {}).get("supported") is False
    if tenant_delta:
        extra = {k: v for k, v in (account.extra or {}).items() if k != DELTA_FLAG}
        _repo().update_account(alice, extra=extra)
        enqueue_sync(SyncRequest(alice, "manual", full=True))
        assert live.host.drain(timeout=30)
    costs = {}
    for name in ("team", "default"):
        target = next(e for e in _repo().list_events(alice) if e.microsoft_calendar_id == live.calendars[name])
        sim.flush_notifications(timeout=5)
        assert live.host.drain(timeout=30)
        sim.reset_counters()
        subject = f"changed in {name}"
        sim.update_event(alice, target.microsoft_event_id, subject=subject)
        _wait_for(live, lambda rows, i=target.microsoft_event_id, s=subject: rows[i][1].get("subject") == s)
        sim.flush_notifications(timeout=5)
        assert live.host.drain(timeout=30)
        costs[name] = dict(sim.counters())
    print(f"graph requests per changed event ({'delta' if tenant_delta else 'listing'}): "
          + ", ".join(f"{n} {sum(v for k, v in c.items() if '/v1.0/' in k)} {c}" for n, c in costs.items()))
    for name, counters in costs.items():
        graph = {k: v for k, v in counters.items() if "/v1.0/" in k}
        assert 1 <= sum(graph.values()) <= 2, (name, graph)
        assert not any(k.endswith("/calendars") for k in graph), f"{name}: the calendar list is not re-read"


def test_a_stale_calendar_list_is_reread_and_new_calendars_subscribed(live, app_env):
    """Acceptance 3: a calendar that appears gets its subscription on the sync that sees it; one that goes
    loses it."""
    sim, alice = live.sim, live.alice
    app_env(CALENDAR_LIST_MAX_AGE_MINUTES="0")  # every notification re-reads the calendar list
    holidays = sim.create_calendar(alice, "Holidays")["id"]
    sim.create_event(alice, subject="nudge", **_slot(1, 8))          # a notification of the default calendar
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(s.container == holidays for s in sim.subscriptions.subs.values()):
        sim.flush_notifications(timeout=2)
        live.host.drain(timeout=10)
    sub = next(s for s in sim.subscriptions.subs.values() if s.container == holidays)
    assert _repo().get_calendar_subscription(alice, holidays).subscription_id == sub.id
    created = sim.create_event(alice, calendar_id=holidays, subject="in holidays", **_slot(3, 10))
    _wait_for(live, lambda rows: created["id"] in rows)

    sim.delete_calendar(alice, live.calendars["travel"])
    old = _repo().get_calendar_subscription(alice, live.calendars["travel"]).subscription_id
    sim.create_event(alice, subject="nudge again", **_slot(1, 9))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _repo().get_calendar_subscription(alice, live.calendars["travel"]):
        sim.flush_notifications(timeout=2)
        live.host.drain(timeout=10)
    assert _repo().get_calendar_subscription(alice, live.calendars["travel"]) is None
    assert old not in sim.subscriptions.subs


def test_delete_all_instance_subscriptions_keeps_replication_alive(live):
    """Acceptance 5: the action spares the sync subscriptions unless include_sync=true; deleted ones show as
    missing in status and doctor until the next renewal run recreates them."""
    from shared.actions.runner import run_action
    from shared.ops.doctor import check_users
    from shared.ops.status import collect_status
    from shared.subscriptions import renew_due

    sim, alice = live.sim, live.alice
    sync_ids = {r.subscription_id for r in _repo().list_calendar_subscriptions(alice)}
    mine = run_action("create-event-subscription", user_id=alice)
    listed = run_action("list-subscriptions", user_id=alice)["value"]
    assert {s["id"] for s in listed} == {mine["id"]}, "List Subscriptions hides the sync subscriptions"
    everything = run_action("list-subscriptions", user_id=alice, inputs={"include_sync": True})["value"]
    assert {s["id"] for s in everything} == sync_ids | {mine["id"]}
    with pytest.raises(Exception, match="include_sync"):
        run_action("delete-subscription", user_id=alice, inputs={"subscription_id": sorted(sync_ids)[0]})

    result = run_action("delete-all-instance-subscriptions", user_id=alice)
    assert result["deleted"] == [mine["id"]] and set(result["kept_sync"]) == sync_ids
    assert sync_ids <= set(sim.subscriptions.subs)
    created = sim.create_event(alice, calendar_id=live.calendars["team"], subject="still replicated", **_slot(4, 11))
    _wait_for(live, lambda rows: created["id"] in rows)

    result = run_action("delete-all-instance-subscriptions", user_id=alice, inputs={"include_sync": True})
    assert set(result["deleted"]) == sync_ids and not sync_ids & set(sim.subscriptions.subs)
    doc = collect_status(user_id=alice)
    (entry,) = doc["users"]
    assert entry["subscription"]["state"] == "missing"
    assert {c["state"] for c in entry["calendars"]} == {"missing"}
    assert sum("subscription missing" in p for p in entry["problems"]) == 3
    (check,) = check_users(live.settings)
    assert not check.ok and "missing" in check.detail

    report = renew_due()
    assert report.recreated == 3 and report.failed == 0
    assert live.host.drain(timeout=30)  # the three calendars' catch-up rounds
    fresh = {r.subscription_id for r in _repo().list_calendar_subscriptions(alice)}
    assert not fresh & sync_ids and fresh <= set(sim.subscriptions.subs)
    (entry,) = collect_status(user_id=alice)["users"]
    assert entry["subscription"]["state"] == "live" and not entry["problems"]
    (check,) = check_users(live.settings)
    assert check.ok, check.line()


def test_without_the_safety_net_the_renewal_run_still_finds_new_and_gone_calendars(live):
    """Acceptance 3 in a quiet mailbox: no notification ever mentions a new calendar; the renewal run's
    calendar-list check (one request per account) subscribes it and replicates its events, and drops the
    subscription of a deleted one."""
    sim, alice = live.sim, live.alice
    projects = sim.create_calendar(alice, "Projects")["id"]
    early = sim.create_event(alice, calendar_id=projects, subject="before anyone listened", **_slot(5, 9))
    team_sub = _repo().get_calendar_subscription(alice, live.calendars["team"]).subscription_id
    sim.delete_calendar(alice, live.calendars["team"])
    live.host.fire_timer("renew_subscriptions")
    assert live.host.drain(timeout=30)
    _wait_for(live, lambda rows: early["id"] in rows)
    sub = _repo().get_calendar_subscription(alice, projects)
    assert sub is not None and sub.subscription_id in sim.subscriptions.subs
    assert _repo().get_calendar_subscription(alice, live.calendars["team"]) is None
    assert team_sub not in sim.subscriptions.subs
    later = sim.create_event(alice, calendar_id=projects, subject="by notification", **_slot(6, 9))
    _wait_for(live, lambda rows: later["id"] in rows)


def test_a_lifecycle_request_is_not_covered_by_a_round_before_the_recreation(live):
    """Regression (convergence seed 303): a round of the calendar that ran after `subscriptionRemoved` was
    received, but before the subscription was recreated, covered the lifecycle request, so changes made in
    between were neither notified nor read."""
    from shared.sync import worker

    sim, alice, team = live.sim, live.alice, live.calendars["team"]
    old = _repo().get_calendar_subscription(alice, team).subscription_id
    received = time.time()
    sim.expire_subscription(old)                                   # removed; its lifecycle event is on its way
    assert worker.run(SyncRequest(alice, "notification", calendar_id=team)).status == "synced"
    unseen = sim.create_event(alice, calendar_id=team, subject="while nothing listened", **_slot(7, 9))
    outcome = worker.run(SyncRequest(alice, "resync", lifecycle_event="subscriptionRemoved", subscription_id=old,
                                     calendar_id=team, received_at=received))
    assert outcome.status == "synced"
    assert unseen["id"] in {e.microsoft_event_id for e in _repo().list_events(alice)}
    assert _repo().get_calendar_subscription(alice, team).subscription_id != old

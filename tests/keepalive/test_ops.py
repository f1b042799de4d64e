"""Status, doctor, poison replay, the maintenance triggers and the CLI.

Acceptance 4: a revoked user, an expired subscription and a poison message,
each provoked for real, show up in status (CLI and GET /api/status) and doctor.
"""

from __future__ import annotations

import datetime as dt
import json
import types

import pytest

from shared.queues.messages import SyncRequest, enqueue_sync


def _repo():
    from shared.storage import open_repository

    return open_repository()


@pytest.fixture
def provoked(keep, monkeypatch):
    """revoked: grant revoked; short: subscription with a 100-minute limit; fine; poisoned: its sync
    failed maxDequeueCount times (Graph kept answering 503)."""
    from devhost import DevHost
    from shared.auth.tokens import get_token_service
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.subscriptions import ensure_subscription, renew_due

    revoked, short, fine, poisoned = keep.users
    for user in keep.users:
        keep.link(user)
    for user in (revoked, fine, poisoned):
        ensure_subscription(user)
    monkeypatch.setattr(keep.sim.subscriptions, "lifetime_limit_minutes", 100)
    short_sub = ensure_subscription(short)
    monkeypatch.setattr(keep.sim.subscriptions, "lifetime_limit_minutes", 4230)

    keep.sim.revoke_refresh_tokens(revoked)
    get_token_service().invalidate(revoked)
    renew_due(settings=keep.settings.with_overrides(renewal_resync=False))  # meets invalid_grant
    assert _repo().get_account(revoked).status == "reauth_required"

    host = DevHost(port=0, timers=False, queues=False, queue_options={"max_dequeue_count": 1}).start()
    try:
        open_queue(SYNC_QUEUE).clear()
        keep.sim.faults.set(rate_503=1.0, retry_after=0.01)
        enqueue_sync(SyncRequest(poisoned, "notification"))
        assert host.poll_queue("sync_worker") == 1
    finally:
        keep.sim.faults.clear()
        host.stop()
    later = short_sub.expiration + dt.timedelta(minutes=5)  # time passes: the short subscription lapses
    return types.SimpleNamespace(keep=keep, revoked=revoked, short=short, fine=fine, poisoned=poisoned, later=later)


def test_status_shows_revoked_expired_and_poison(provoked):
    from shared.ops.status import collect, render_text

    p = provoked
    report = collect(now=p.later)
    doc = report.as_dict()
    users = {u["user_id"]: u for u in doc["users"]}
    assert users[p.revoked]["status"] == "reauth_required"
    assert "AADSTS50173" in users[p.revoked]["status_reason"]
    assert any("must sign in again" in x for x in users[p.revoked]["problems"])
    assert users[p.short]["subscription"]["state"] == "expired"
    assert any("subscription expired" in x for x in users[p.short]["problems"])
    assert users[p.fine]["subscription"]["state"] == "live" and not users[p.fine]["problems"]
    assert "503" in (users[p.poisoned]["last_error"] or "")
    assert doc["queues"]["calendar-sync-poison"] == 1
    assert doc["healthy"] is False
    assert doc["totals"]["by_status"] == {"linked": 3, "reauth_required": 1}
    assert doc["totals"]["subscriptions"] == {"expired": 1, "live": 2}
    text = render_text(report)
    assert "reauth_required" in text and "expired" in text and "calendar-sync-poison 1" in text
    assert "replay-poison" in text


def test_doctor_shows_revoked_expired_and_poison(provoked):
    from shared.ops.doctor import run_checks
    from shared.storage import people

    p = provoked
    checks = run_checks(now=p.later)
    lines = "\n".join(c.line() for c in checks)
    by_name = {c.name: c for c in checks}
    for user_id in (p.revoked, p.short, p.fine):  # doctor names users by address, as status does
        by_name[f"user {user_id}"] = by_name[f"user {people.label_of(_repo(), user_id)}"]
    assert not by_name[f"user {p.revoked}"].ok and "sign in" in by_name[f"user {p.revoked}"].fix
    assert not by_name[f"user {p.short}"].ok and "expired" in by_name[f"user {p.short}"].detail
    assert "python -m shared renew" in by_name[f"user {p.short}"].fix
    assert by_name[f"user {p.fine}"].ok
    assert not by_name["poison queue"].ok and "replay-poison" in by_name["poison queue"].fix
    for name in ("configuration", "secret store", "database", "queue wiring", "queue", "reachability",
                 "renewal schedule"):
        assert by_name[name].ok, lines


def test_replay_poison_moves_messages_back(provoked, capsys):
    from shared.cli import main
    from shared.queues import SYNC_QUEUE, open_queue, poison_queue_name

    p = provoked
    assert main(["replay-poison", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would replay 1 message(s)" in out and p.poisoned in out
    assert open_queue(poison_queue_name(SYNC_QUEUE)).depth() == 1
    assert main(["replay-poison"]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    assert open_queue(poison_queue_name(SYNC_QUEUE)).depth() == 0
    assert [json.loads(m.body)["user_id"] for m in open_queue(SYNC_QUEUE).peek()] == [p.poisoned]


def test_cli_status_doctor_and_renew(provoked, capsys):
    from shared.cli import main

    p = provoked
    assert main(["status", "--json"]) == 1  # not healthy: exit code 1 for scripts
    doc = json.loads(capsys.readouterr().out)
    assert {u["user_id"] for u in doc["users"]} == set(p.keep.users)
    assert main(["status"]) == 1
    assert "ATTENTION NEEDED" in capsys.readouterr().out
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL user" in out and "fix:" in out
    assert main(["renew", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 0 and report["checked"] + report["renewed"] == 3


def test_status_endpoint_needs_a_function_key(provoked):
    from devhost import DevHost

    p = provoked
    host = DevHost(port=0, timers=False, queues=False, function_key="k-test").start()
    try:
        assert host.dispatch("GET", "/api/status", {}, b"").status_code == 401
        answer = host.dispatch("GET", "/api/status", {"x-functions-key": "k-test"}, b"")
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        doc = json.loads(answer.get_body())
        assert {u["user_id"]: u["status"] for u in doc["users"]}[p.revoked] == "reauth_required"
        assert doc["queues"]["calendar-sync-poison"] == 1
    finally:
        host.stop()


def test_renewal_timer_trigger_runs_a_renewal(keep):
    from devhost import DevHost
    from shared.subscriptions import ensure_subscription
    from tests.keepalive.conftest import queued

    user = keep.link(keep.users[0])
    keep.sim.expire_subscription(ensure_subscription(user).id)
    host = DevHost(port=0, timers=False, queues=False)
    host.fire_timer("renew_subscriptions")                 # queues the run's shard
    assert host.poll_queue("renewal_worker") == 1          # the queue trigger renews it
    assert _repo().get_user(user).events_subscription_id in keep.sim.subscriptions.subs
    assert [m["reason"] for m in queued()] == ["renewal"]


def test_advance_window_queues_only_accounts_whose_window_moved(keep):
    from devhost import DevHost
    from shared.ops.window import enqueue_window_syncs
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.sync.window import current_window
    from tests.keepalive.conftest import queued

    moved, current = keep.users[:2]
    keep.link(moved)
    keep.link(current)
    repo = _repo()
    window = current_window(keep.settings)
    for user, win in ((moved, (window[0] - dt.timedelta(days=1), window[1] - dt.timedelta(days=1))),
                      (current, window)):
        repo.upsert_calendars(user, [{"id": f"cal-{user}", "name": "Calendar"}])
        repo.save_page(user, f"cal-{user}", events=[], removed_ids=[], next_link=None, delta_link="d", window=win)
    DevHost(port=0, timers=False, queues=False).fire_timer("advance_window")
    assert [(m["user_id"], m["reason"]) for m in queued()] == [(moved, "window")]
    open_queue(SYNC_QUEUE).clear()
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert sorted(enqueue_window_syncs(now=tomorrow)) == sorted([moved, current])


def test_doctor_flags_unreachable_public_url(keep, app_env):
    from shared.ops.doctor import check_reachability

    settings = keep.settings.with_overrides(graph_base_url="https://graph.microsoft.com/v1.0",
                                            app_base_url="http://localhost:7071")
    (check,) = check_reachability(settings)
    assert not check.ok and "https" in check.fix
    settings = settings.with_overrides(app_base_url="https://myapp.azurewebsites.net")
    (check,) = check_reachability(settings)
    assert check.ok


def test_doctor_flags_a_missing_client_secret(keep):
    from shared.ops.doctor import run_checks
    from shared.secrets import CLIENT_SECRET, open_secret_store

    open_secret_store(keep.settings).delete(CLIENT_SECRET)
    check = next(c for c in run_checks() if c.name == "secret store")
    assert not check.ok and "secrets set client-secret" in check.fix

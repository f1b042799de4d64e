"""Renewal that fans out: the timer queues shards of accounts, the queue trigger renews them.

The shards travel through the real queue (the embedded one, and Azurite) and are run by the local
host's queue trigger (`renewal_worker`), as the Functions host would; Graph is the simulator."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.keepalive.conftest import queued


def _repo():
    from shared.storage import open_repository

    return open_repository()


def _due_all() -> None:
    """Every stored subscription expires before the renewal horizon."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    for row in _repo().list_calendar_subscriptions():
        _repo().update_calendar_subscription(row.microsoft_user_id, row.microsoft_calendar_id, expiration=soon)


def _renewal_queue():
    from shared.queues import RENEWAL_QUEUE, open_queue

    return open_queue(RENEWAL_QUEUE)


def _host():
    from devhost.host import DevHost

    return DevHost(port=0, timers=False, queues=False, function_key="k-test",
                   queue_options={"visibility_timeout": 0, "max_dequeue_count": 2})


def _run_worker(host, rounds: int = 20) -> None:
    """Poll the renewal trigger until its queue is empty (each poll: one batch, as the host does)."""
    for _ in range(rounds):
        if host.poll_queue("renewal_worker") == 0 and _renewal_queue().depth() == 0:
            return
    raise AssertionError("the renewal queue never drained")


def _status() -> dict:
    from shared.ops.status import collect_status

    return collect_status(check_graph=False)


def _link_mixed(keep) -> list[str]:
    """Two delegated and two app-only accounts, the first with two extra calendars: 6 subscriptions."""
    from shared.subscriptions import ensure_subscriptions

    users = keep.users
    for user in users[:2]:
        keep.link(user)
    for user in users[2:]:
        keep.link(user, mode="app_only")
    keep.sim.create_calendar(users[0], "Team")
    keep.sim.create_calendar(users[0], "Projects")
    for user in users:
        ensure_subscriptions(user)
    _due_all()
    return users


@pytest.fixture(params=["embedded", "azurite"])
def queue_kind(request, keep, app_env):
    """The keep-alive environment, with the app's queues embedded or on Azurite."""
    if request.param == "azurite":
        azurite = request.getfixturevalue("azurite")
        app_env(QUEUE_CONNECTION_STRING=azurite, AzureWebJobsStorage=azurite)
    from shared.queues import SYNC_QUEUE, open_queue

    for queue in (_renewal_queue(), open_queue(SYNC_QUEUE)):  # Azurite's queues outlive a test
        queue.clear()
    return request.param


def test_the_timer_queues_shards_and_the_queue_trigger_renews_them(keep, queue_kind):
    from shared.subscriptions.shards import RenewalShard, plan_renewal

    users = _link_mixed(keep)
    before = {r.subscription_id for r in _repo().list_calendar_subscriptions()}
    keep.sim.reset_counters()
    plan = plan_renewal(shard_accounts=3)
    assert (plan.shards, plan.accounts) == (2, 4)
    shards = [RenewalShard.from_json(m.body) for m in _renewal_queue().peek(32)]
    assert sorted(u for s in shards for u in s.user_ids) == sorted(users)
    assert {s.run for s in shards} == {plan.run} and sorted(s.shard for s in shards) == [0, 1]
    modes = [{_repo().get_account(u).mode for u in s.user_ids} for s in shards]
    assert sorted(map(sorted, modes)) == [["app_only"], ["delegated"]], "app-only apart: full $batch requests"
    assert keep.sim.counters() == {}, "planning reads no Graph"
    progress = _status()["renewal"]
    assert (progress["state"], progress["shards_planned"], progress["shards_done"]) == ("running", 2, 0)

    host = _host()
    _run_worker(host)
    rows = _repo().list_calendar_subscriptions()
    assert len(rows) == 6 and {r.subscription_id for r in rows} == before
    assert all(r.expiration > dt.datetime.now(dt.UTC) + dt.timedelta(days=2) for r in rows)
    counters = keep.sim.counters()
    assert counters["$batch PATCH /v1.0/subscriptions/{id}"] == 2  # the app-only ones, batched
    assert counters["PATCH /v1.0/subscriptions/{id}"] == 4          # the delegated ones, one each
    progress = _status()["renewal"]
    assert progress["state"] == "finished" and progress["finished_at"] is not None
    assert (progress["shards_planned"], progress["shards_done"], progress["accounts"]) == (2, 2, 4)
    assert (progress["renewed"], progress["recreated"], progress["failed"]) == (6, 0, 0)
    assert sorted(m["user_id"] for m in queued() if m["reason"] == "renewal") == sorted(users)  # safety net
    host.start()
    try:
        answer = host.dispatch("GET", "/api/status", {"x-functions-key": "k-test"}, b"")
    finally:
        host.stop()
    assert answer.status_code == 200 and json.loads(answer.get_body())["renewal"] == progress


def test_a_failing_subscription_or_shard_stops_no_other(keep, monkeypatch):
    """One subscription's renewal fails (Graph 500): counted as failed, the rest renewed. One shard fails
    as a whole (its account cannot be read): retried, then parked in the poison queue; the other shard
    is renewed and status shows the run unfinished."""
    from graphsim.util import GraphError
    from shared.queues import RENEWAL_QUEUE, open_queue, poison_queue_name
    from shared.storage.base import RepositoryBase
    from shared.subscriptions.shards import plan_renewal

    users = _link_mixed(keep)
    _renewal_queue().clear()
    broken_sub = _repo().list_calendar_subscriptions(users[2])[0].subscription_id
    original_renew = keep.sim.subscriptions.renew

    def renew(sub_id, app_id, body):
        if sub_id == broken_sub:
            raise GraphError(500, "InternalServerError", "boom")
        return original_renew(sub_id, app_id, body)

    monkeypatch.setattr(keep.sim.subscriptions, "renew", renew)
    plan = plan_renewal(shard_accounts=2)
    shards = [json.loads(m.body)["users"] for m in _renewal_queue().peek(32)]
    assert plan.shards == 2 and len(shards) == 2
    healthy = next(s for s in shards if users[2] in s)  # holds the subscription Graph fails
    failing = next(s for s in shards if users[2] not in s)
    unreadable = failing[0]
    original_get = RepositoryBase.get_account

    def get_account(self, user_id):
        if user_id == unreadable:
            raise OSError("storage unavailable for this account")
        return original_get(self, user_id)

    monkeypatch.setattr(RepositoryBase, "get_account", get_account)
    _run_worker(_host())

    poison = open_queue(poison_queue_name(RENEWAL_QUEUE)).peek(32)
    assert [json.loads(m.body)["users"] for m in poison] == [failing]
    progress = _status()["renewal"]
    assert (progress["state"], progress["shards_done"], progress["shards_planned"]) == ("running", 1, 2)
    subscriptions = sum(len(_repo().list_calendar_subscriptions(u)) for u in healthy)
    assert (progress["renewed"], progress["failed"]) == (subscriptions - 1, 1)
    assert "boom" in _repo().get_account(users[2]).extra["subscription_error"]
    assert _status()["queues"]["subscription-renewal-poison"] == 1
    open_queue(poison_queue_name(RENEWAL_QUEUE)).clear()


def test_status_text_shows_the_last_run_and_a_run_without_accounts_is_finished(keep, capsys):
    from shared.cli import main
    from shared.ops.status import collect, render_text
    from shared.subscriptions.shards import plan_renewal

    assert collect(check_graph=False).renewal is None
    assert "renewal: no run yet" in render_text(collect(check_graph=False))
    plan = plan_renewal()
    assert (plan.shards, plan.accounts) == (0, 0)
    text = render_text(collect(check_graph=False))
    assert f"renewal run {plan.run} finished: shards 0/0, 0 accounts" in text
    main(["status", "--json"])
    run = json.loads(capsys.readouterr().out)["renewal"]
    assert (run["run"], run["state"], run["shards_planned"], run["accounts"]) == (plan.run, "finished", 0, 0)
    main(["status"])
    assert f"renewal run {plan.run} finished" in capsys.readouterr().out


def test_a_shard_checks_app_only_subscriptions_not_due_in_a_batch_and_recreates_a_vanished_one(keep):
    from shared.subscriptions import ensure_subscriptions
    from shared.subscriptions.renew import renew_accounts

    users = keep.users[:3]
    for user in users:
        keep.link(user, mode="app_only")
        ensure_subscriptions(user)
    gone = _repo().list_calendar_subscriptions(users[1])[0]
    keep.sim.expire_subscription(gone.subscription_id)
    keep.sim.reset_counters()
    report = renew_accounts(users)
    assert (report.checked, report.recreated, report.failed) == (2, 1, 0), report.as_dict()
    counters = keep.sim.counters()
    assert counters["POST /v1.0/$batch"] == 1 and counters["$batch GET /v1.0/subscriptions/{id}"] == 3
    assert "GET /v1.0/subscriptions" not in counters, "a shard does not list every subscription of the app"
    now = _repo().get_calendar_subscription(users[1], gone.microsoft_calendar_id)
    assert now.subscription_id != gone.subscription_id and now.subscription_id in keep.sim.subscriptions.subs


def test_a_late_shard_of_an_older_run_leaves_the_last_runs_figures_alone(keep):
    """Two progress slots in turn: run 3 reuses run 1's, and a shard of run 1 finishing late adds nothing."""
    from shared.storage import open_repository
    from shared.subscriptions import progress
    from shared.subscriptions.shards import plan_renewal

    users = _link_mixed(keep)
    _renewal_queue().clear()
    runs = [plan_renewal(shard_accounts=4) for _ in range(3)]
    assert [r.run for r in runs] == [runs[0].run, runs[0].run + 1, runs[0].run + 2]
    _run_worker(_host())  # the shards of all three runs, oldest first
    last = progress.last_run(open_repository())
    assert last is not None and last["run"] == runs[2].run and last["state"] == "finished"
    subscriptions = len(_repo().list_calendar_subscriptions())
    assert (last["shards_done"], last["shards_planned"]) == (2, 2)
    assert last["renewed"] + last["checked"] == subscriptions and last["failed"] == 0  # run 1's not added
    assert last["accounts"] == len(users)


@pytest.mark.parametrize("body", [
    "[]", '{"run": 0, "shard": 0, "users": ["a"]}', '{"run": 1, "shard": -1, "users": ["a"]}',
    '{"run": 1, "shard": 0, "users": []}', '{"run": 1, "shard": 0, "users": [""]}',
    '{"run": true, "shard": 0, "users": ["a"]}', '{"run": 1, "shard": 0, "users": "a"}',
    '{"run": 1, "shard": 0, "users": [' + ",".join(['"a"'] * 1001) + "]}", "not json",
])
def test_a_malformed_shard_is_dropped_without_touching_graph(keep, body):
    from shared.subscriptions.shards import renew_shard

    keep.link(keep.users[0])
    keep.sim.reset_counters()
    assert renew_shard(body) is None
    assert keep.sim.counters() == {}


def test_the_cli_renewal_still_runs_inline(keep):
    """`python -m shared renew` renews in its own process, queueing no shard."""
    from shared.subscriptions import ensure_subscriptions, renew_due

    for user in keep.users[:2]:
        keep.link(user, mode="app_only")
        ensure_subscriptions(user)
    _due_all()
    _renewal_queue().clear()
    report = renew_due()
    assert report.renewed == 2 and _renewal_queue().depth() == 0

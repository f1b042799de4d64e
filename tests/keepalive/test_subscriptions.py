"""ensure_subscription(s), lifecycle handling and the renewal run against the Graph simulator.

Every calendar has a subscription of its own; a user of the simulator starts with one
(default) calendar, so one subscription per user unless a test adds calendars."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.queues.messages import SyncRequest
from tests.keepalive.conftest import queued


def _repo():
    from shared.storage import open_repository

    return open_repository()


def _sim_sub(sim, sub_id):
    return sim.subscriptions.subs.get(sub_id)


def _default_calendar(sim, user):
    return sim.store.mailbox(user).default_calendar().id


def _set_expiry(user, sub_id, when):
    """What the stored row says about a subscription's expiry (the simulator's is unchanged)."""
    for row in _repo().list_calendar_subscriptions(user):
        if row.subscription_id == sub_id:
            _repo().update_calendar_subscription(user, row.microsoft_calendar_id, expiration=when)


def test_ensure_creates_a_delegated_subscription_once(keep):
    from shared.notifications import client_state
    from shared.subscriptions import ensure_subscription

    user = keep.link(keep.users[0])
    first = ensure_subscription(user)
    calendar = _default_calendar(keep.sim, user)
    assert first.created and first.resource == f"me/calendars/{calendar}/events"
    sub = _sim_sub(keep.sim, first.id)
    assert sub.container == calendar
    assert sub.change_types == ["created", "updated", "deleted"]
    assert sub.lifecycle_url and "/api/graph/lifecycle?" in sub.lifecycle_url
    assert sub.immutable_ids, "Prefer: IdType=ImmutableId is sent at creation"
    query = dict(p.split("=", 1) for p in sub.notification_url.split("?", 1)[1].split("&"))
    routing = client_state.verify(query["sid"], query["kid"], sub.client_state)
    assert (routing.value, routing.calendar_id) == (user, calendar)
    assert _repo().get_account(user).subscription_client_state_id == query["kid"]
    row = _repo().get_user(user)
    assert row.events_subscription_id == first.id
    assert abs((row.events_subscription_expiration - first.expiration).total_seconds()) < 1
    assert (first.expiration - dt.datetime.now(dt.UTC)) > dt.timedelta(minutes=10060)  # 10,070 by default
    assert _repo().get_calendar_subscription(user, calendar).state == "live"

    keep.sim.reset_counters()
    again = ensure_subscription(user)
    assert again.id == first.id and not again.created
    assert keep.sim.counters() == {}, "a live subscription costs no Graph call"


def test_ensure_renews_a_subscription_that_expires_before_the_horizon(keep):
    from shared.subscriptions import ensure_subscription

    user = keep.link(keep.users[0])
    first = ensure_subscription(user)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    _set_expiry(user, first.id, soon)
    renewed = ensure_subscription(user)
    assert renewed.id == first.id and renewed.expiration > soon + dt.timedelta(days=2)
    assert keep.sim.counters().get("PATCH /v1.0/subscriptions/{id}") == 1


def test_app_only_subscription_uses_the_users_resource(keep):
    from shared.subscriptions import ensure_subscription

    user = keep.link(keep.users[1], mode="app_only")
    created = ensure_subscription(user)
    assert created.resource == f"users/{user}/calendars/{_default_calendar(keep.sim, user)}/events"
    assert _sim_sub(keep.sim, created.id).user_id == user


def test_extension_error_teaches_the_lifetime_limit(keep, monkeypatch):
    from shared.subscriptions import ensure_subscription

    monkeypatch.setattr(keep.sim.subscriptions, "lifetime_limit_minutes", 1000)
    user = keep.link(keep.users[0])
    created = ensure_subscription(user)
    left = created.expiration - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=990) < left <= dt.timedelta(minutes=1000)
    assert _repo().get_account(user).subscription_lifetime_minutes == 1000
    assert keep.sim.counters()["POST /v1.0/subscriptions"] == 2  # refused once, then the learned limit

    keep.sim.reset_counters()
    _set_expiry(user, created.id, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    ensure_subscription(user)
    assert keep.sim.counters()["PATCH /v1.0/subscriptions/{id}"] == 1, "the learned limit is used at once"


def test_quota_refusal_is_recorded_on_the_account(keep, monkeypatch):
    import pytest

    from graphsim.util import GraphError
    from shared.subscriptions import SubscriptionQuotaError, ensure_subscription

    def full(*args, **kwargs):
        raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: "
                         "The maximum number of subscriptions for this mailbox has been reached.]")

    monkeypatch.setattr(keep.sim.subscriptions, "create", full)
    user = keep.link(keep.users[0])
    with pytest.raises(SubscriptionQuotaError, match="quota"):
        ensure_subscription(user)
    account = _repo().get_account(user)
    assert "maximum number of subscriptions" in account.quota_error


def test_delete_subscription(keep):
    from shared.subscriptions import delete_subscription, ensure_subscription

    user = keep.link(keep.users[0])
    created = ensure_subscription(user)
    assert delete_subscription(user) is True
    assert created.id not in keep.sim.subscriptions.subs
    assert _repo().get_user(user).events_subscription_id is None
    assert delete_subscription(user) is None


# --- lifecycle ---------------------------------------------------------------------------------
def test_subscription_removed_creates_a_new_one_once(keep):
    from shared.subscriptions import ensure_subscription
    from shared.subscriptions.lifecycle import handle_lifecycle

    user = keep.link(keep.users[0])
    old = ensure_subscription(user)
    keep.sim.remove_subscription(old.id)
    event = SyncRequest(user, "resync", lifecycle_event="subscriptionRemoved", subscription_id=old.id,
                        calendar_id=old.calendar_id)
    handle_lifecycle(event)
    new_id = _repo().get_user(user).events_subscription_id
    assert new_id != old.id and new_id in keep.sim.subscriptions.subs
    handle_lifecycle(event)  # a duplicate delivery of the same event
    assert _repo().get_user(user).events_subscription_id == new_id
    assert len([s for s in keep.sim.subscriptions.subs.values() if s.user_id == user]) == 1


def test_reauthorization_required_reauthorizes_or_recreates(keep):
    from shared.subscriptions import ensure_subscription
    from shared.subscriptions.lifecycle import handle_lifecycle

    user = keep.link(keep.users[0])
    sub = ensure_subscription(user)
    keep.sim.reset_counters()
    handle_lifecycle(SyncRequest(user, "resync", lifecycle_event="reauthorizationRequired", subscription_id=sub.id,
                                 calendar_id=sub.calendar_id))
    assert keep.sim.counters().get("POST /v1.0/subscriptions/{id}/reauthorize") == 1
    assert _repo().get_user(user).events_subscription_id == sub.id

    keep.sim.expire_subscription(sub.id)
    handle_lifecycle(SyncRequest(user, "resync", lifecycle_event="reauthorizationRequired", subscription_id=sub.id,
                                 calendar_id=sub.calendar_id))
    assert _repo().get_user(user).events_subscription_id != sub.id


def test_missed_changes_nothing_here(keep):
    from shared.subscriptions import ensure_subscription
    from shared.subscriptions.lifecycle import handle_lifecycle

    user = keep.link(keep.users[0])
    sub = ensure_subscription(user)
    keep.sim.reset_counters()
    handle_lifecycle(SyncRequest(user, "resync", lifecycle_event="missed", subscription_id=sub.id))
    assert keep.sim.counters() == {}


# --- renewal -----------------------------------------------------------------------------------
def _due(user: str, sub_id: str) -> None:
    _set_expiry(user, sub_id, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20))


def test_renewal_recreates_404_and_one_failure_never_stops_the_others(keep):
    """Acceptance 2: a 404 renewal is recreated and resynced; a failing user stops nobody."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.subscriptions import ensure_subscription, renew_due

    delegated_ok, delegated_gone, revoked, app_user = keep.users
    for user in (delegated_ok, delegated_gone, revoked):
        keep.link(user)
    keep.link(app_user, mode="app_only")
    subs = {user: ensure_subscription(user) for user in keep.users}
    for user, sub in subs.items():
        _due(user, sub.id)
    keep.sim.expire_subscription(subs[delegated_gone].id)     # Graph answers 404 to the PATCH
    keep.sim.revoke_refresh_tokens(revoked)                   # invalid_grant on the token refresh
    from shared.auth.tokens import get_token_service

    get_token_service().invalidate(revoked)
    open_queue(SYNC_QUEUE).clear()

    report = renew_due()
    assert (report.renewed, report.recreated, report.skipped, report.failed) == (2, 1, 1, 0), report.as_dict()
    repo = _repo()
    assert repo.get_user(delegated_gone).events_subscription_id != subs[delegated_gone].id
    assert repo.get_account(revoked).status == "reauth_required"
    for user in (delegated_ok, app_user):
        row = repo.get_user(user)
        assert row.events_subscription_id == subs[user].id
        assert row.events_subscription_expiration > dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    # The recreated calendar is resynced; the safety net queues a sync for the other linked ones.
    messages = queued()
    assert [(m["user_id"], m.get("calendar_id")) for m in messages if m.get("calendar_id")] == [
        (delegated_gone, _default_calendar(keep.sim, delegated_gone))]
    assert sorted(m["user_id"] for m in messages if not m.get("calendar_id")) == sorted([delegated_ok, app_user])
    assert report.resynced == 2 and all(m["reason"] == "renewal" for m in messages)


def test_app_only_renewals_go_through_batch(keep):
    from shared.subscriptions import ensure_subscription, renew_due

    for user in keep.users:
        keep.link(user, mode="app_only")
        _due(user, ensure_subscription(user).id)
    keep.sim.reset_counters()
    report = renew_due()
    assert report.renewed == 4
    counters = keep.sim.counters()
    assert counters["POST /v1.0/$batch"] == 1
    assert counters["$batch PATCH /v1.0/subscriptions/{id}"] == 4


def test_a_generic_failure_is_recorded_and_the_rest_renewed(keep, monkeypatch):
    from graphsim.util import GraphError
    from shared.subscriptions import ensure_subscription, renew_due

    users = keep.users[:3]
    subs = {}
    for user in users:
        keep.link(user, mode="app_only")
        subs[user] = ensure_subscription(user)
        _due(user, subs[user].id)
    broken = subs[users[1]].id
    original = keep.sim.subscriptions.renew

    def renew(sub_id, app_id, body):
        if sub_id == broken:
            raise GraphError(500, "InternalServerError", "boom")
        return original(sub_id, app_id, body)

    monkeypatch.setattr(keep.sim.subscriptions, "renew", renew)
    report = renew_due()
    assert (report.renewed, report.failed) == (2, 1)
    assert "boom" in report.errors[f"{users[1]}/{subs[users[1]].calendar_id}"]
    assert "boom" in _repo().get_account(users[1]).extra["subscription_error"]


def test_renewal_heals_missing_and_silently_vanished_subscriptions(keep):
    from shared.subscriptions import ensure_subscription, renew_due

    no_sub, vanished, vanished_app, fine = keep.users
    keep.link(no_sub)
    keep.link(vanished)
    keep.link(vanished_app, mode="app_only")
    keep.link(fine, mode="app_only")
    old = {u: ensure_subscription(u) for u in (vanished, vanished_app, fine)}
    keep.sim.expire_subscription(old[vanished].id)        # dropped by Graph; our row still says "live"
    keep.sim.expire_subscription(old[vanished_app].id)
    report = renew_due()
    assert (report.recreated, report.checked, report.failed) == (3, 1, 0), report.as_dict()
    repo = _repo()
    for user in (no_sub, vanished, vanished_app):
        assert repo.get_user(user).events_subscription_id in keep.sim.subscriptions.subs
    assert repo.get_user(fine).events_subscription_id == old[fine].id
    assert sorted(m["user_id"] for m in queued()) == sorted(keep.users)  # 3 recreated + 1 safety net
    assert report.resynced == 1


def test_without_the_safety_net_only_recreated_users_are_resynced(keep, app_env):
    from shared.subscriptions import ensure_subscription, renew_due

    settings = app_env(RENEWAL_RESYNC="false")
    gone, fine = keep.users[:2]
    keep.link(gone)
    keep.link(fine)
    keep.sim.expire_subscription(ensure_subscription(gone).id)
    ensure_subscription(fine)
    report = renew_due(settings=settings)
    assert (report.recreated, report.checked, report.resynced, report.calendar_checks) == (1, 1, 0, 2)
    assert [m["user_id"] for m in queued() if m["reason"] == "renewal"] == [gone]
    assert sorted(m["user_id"] for m in queued() if m["reason"] == "calendars") == sorted([gone, fine])


def test_renewal_ignores_accounts_that_are_not_linked(keep):
    from shared.subscriptions import renew_due

    user = keep.link(keep.users[0])
    _repo().update_account(user, status="reauth_required", status_reason="AADSTS50173")
    keep.sim.reset_counters()
    report = renew_due()
    assert report.as_dict()["recreated"] == 0 and keep.sim.counters() == {}


# --- per calendar ------------------------------------------------------------------------------
def _with_calendars(keep, user, *names):
    return [keep.sim.create_calendar(user, name)["id"] for name in names]


def test_a_404_on_one_calendars_renewal_recreates_that_one_only(keep):
    """Acceptance 3: three calendars due, one subscription gone: two renewed, one recreated and resynced."""
    from shared.subscriptions import ensure_subscriptions, renew_due

    user = keep.link(keep.users[0])
    team, travel = _with_calendars(keep, user, "Team", "Travel")
    subs = {s.calendar_id: s for s in ensure_subscriptions(user)}
    assert set(subs) == {_default_calendar(keep.sim, user), team, travel}
    for sub in subs.values():
        _due(user, sub.id)
    keep.sim.expire_subscription(subs[team].id)
    report = renew_due(settings=keep.settings.with_overrides(renewal_resync=False))
    assert (report.renewed, report.recreated, report.failed) == (2, 1, 0), report.as_dict()
    assert report.outcomes[f"{user}/{team}"] == "recreated"
    rows = {r.microsoft_calendar_id: r.subscription_id for r in _repo().list_calendar_subscriptions(user)}
    assert rows[team] != subs[team].id and rows[team] in keep.sim.subscriptions.subs
    assert {c: rows[c] for c in rows if c != team} == {c: s.id for c, s in subs.items() if c != team}
    assert [(m["user_id"], m.get("calendar_id")) for m in queued() if m["reason"] == "renewal"] == [(user, team)]


def test_app_only_calendar_subscriptions_renew_in_batches(keep):
    """Acceptance 3 (small): 25 calendar subscriptions of one app-only mailbox go 20 to a $batch."""
    from shared.subscriptions import ensure_subscriptions, renew_due

    user = keep.link(keep.users[0], mode="app_only")
    _with_calendars(keep, user, *[f"Project {n}" for n in range(24)])
    subs = ensure_subscriptions(user)
    assert len(subs) == 25 and all(s.resource.startswith(f"users/{user}/calendars/") for s in subs)
    for sub in subs:
        _due(user, sub.id)
    keep.sim.reset_counters()
    report = renew_due(settings=keep.settings.with_overrides(renewal_resync=False))
    assert report.renewed == 25
    counters = keep.sim.counters()
    assert counters["POST /v1.0/$batch"] == 2 and counters["$batch PATCH /v1.0/subscriptions/{id}"] == 25
    assert "PATCH /v1.0/subscriptions/{id}" not in counters


@pytest.mark.parametrize("mode", ["delegated", "app_only"])
def test_a_4230_minute_tenant_is_learned_and_renewed(keep, monkeypatch, mode):
    """Acceptance 4: the default 10,070 minutes is refused once, 4,230 learned, then created and renewed."""
    from shared.subscriptions import ensure_subscriptions, renew_due

    monkeypatch.setattr(keep.sim.subscriptions, "lifetime_limit_minutes", 4230)
    user = keep.link(keep.users[0], mode=mode)
    _with_calendars(keep, user, "Team")
    subs = ensure_subscriptions(user)
    assert len(subs) == 2
    assert _repo().get_account(user).subscription_lifetime_minutes == 4230
    for sub in subs:
        left = sub.expiration - dt.datetime.now(dt.UTC)
        assert dt.timedelta(minutes=4220) < left <= dt.timedelta(minutes=4230)
        _due(user, sub.id)
    keep.sim.reset_counters()
    report = renew_due(settings=keep.settings.with_overrides(renewal_resync=False))
    assert (report.renewed, report.failed) == (2, 0), report.as_dict()
    for row in _repo().list_calendar_subscriptions(user):
        assert row.expiration > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4200)
    assert not any(name.startswith("POST /v1.0/subscriptions") for name in keep.sim.counters()), "no re-learning"


def test_calendars_over_the_cap_fall_back_to_the_safety_net(keep, app_env):
    from shared.ops.status import collect_status
    from shared.subscriptions import ensure_subscriptions, renew_due

    settings = app_env(MAX_CALENDAR_SUBSCRIPTIONS="2")
    user = keep.link(keep.users[0])
    _with_calendars(keep, user, "A team", "B travel", "C holidays")
    subs = ensure_subscriptions(user)
    assert len(subs) == 2 and len([s for s in keep.sim.subscriptions.subs.values() if s.user_id == user]) == 2
    rows = {r.microsoft_calendar_id: r for r in _repo().list_calendar_subscriptions(user)}
    assert sorted(r.state for r in rows.values()) == ["capped", "capped", "live", "live"]
    assert rows[_default_calendar(keep.sim, user)].state == "live", "the default calendar comes first"
    (entry,) = collect_status(settings, user_id=user)["users"]
    capped = [c for c in entry["calendars"] if c["state"] == "capped"]
    assert len(capped) == 2 and entry["subscription"]["state"] == "live" and not entry["problems"]
    assert sum("MAX_CALENDAR_SUBSCRIPTIONS" in n for n in entry["notes"]) == 2
    report = renew_due(settings=settings)
    assert report.checked == 2 and report.resynced == 1  # the safety net covers the capped calendars
    (entry,) = collect_status(settings.with_overrides(renewal_resync=False), user_id=user)["users"]
    assert sum("RENEWAL_RESYNC is off" in p for p in entry["problems"]) == 2


def test_an_account_wide_subscription_of_an_earlier_version_is_replaced(keep):
    from shared.subscriptions import ensure_subscriptions
    from shared.subscriptions.lifecycle import handle_lifecycle

    user = keep.link(keep.users[0])
    legacy = keep.sim.subscriptions.create(
        {"changeType": "created", "notificationUrl": keep.receiver.url, "resource": "me/events",
         "expirationDateTime": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()},
        keep.client_id, keep.tenant, user, lambda kind: None)
    _repo().set_events_subscription(user, legacy.id, legacy.expiration)
    handle_lifecycle(SyncRequest(user, "resync", lifecycle_event="subscriptionRemoved", subscription_id=legacy.id))
    assert legacy.id not in keep.sim.subscriptions.subs
    (sub,) = ensure_subscriptions(user)
    assert _repo().get_user(user).events_subscription_id == sub.id and sub.calendar_id

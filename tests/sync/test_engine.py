"""The engine against the simulator: mutations, coalescing, crashes, 410, window moves, outbound."""

from __future__ import annotations

import time

import pytest

from shared.queues.messages import SyncRequest, enqueue_sync
from tests.sync.crash import SimulatedCrash
from tests.sync.world import slot, weekly

DELTA = "GET /v1.0/me/calendarView/delta"


def _seed(world, user):
    sim = world.sim
    team = sim.create_calendar(user, "Team")
    travel = sim.create_calendar(user, "Travel")
    ids = {
        "single": sim.create_event(user, subject="single", **slot(1))["id"],
        "series": sim.create_event(user, subject="series", **weekly(-10))["id"],
        "team": sim.create_event(user, calendar_id=team["id"], subject="team", **slot(3))["id"],
        "team_series": sim.create_event(user, calendar_id=team["id"], subject="ts", **weekly(1, 8))["id"],
        "travel": sim.create_event(user, calendar_id=travel["id"], subject="trip", **slot(20))["id"],
        "far": sim.create_event(user, subject="far future", **slot(500))["id"],
    }
    return team, travel, ids


def _notify(world, user):
    enqueue_sync(SyncRequest(user, "notification"), world.settings)
    return world.drain()


def _occurrences(world, user, master_id):
    return [d for d in world.sim.ground_truth(user)["events"] if d.get("seriesMasterId") == master_id]


def test_every_kind_of_change_converges(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    team, travel, ids = _seed(world, alice)
    world.link(alice)
    world.drain()
    world.assert_converged(alice)

    sim.update_event(alice, ids["single"], subject="single, renamed")
    sim.create_event(alice, subject="new", **slot(2))
    sim.delete_event(alice, ids["team"])
    sim.cancel_event(alice, ids["travel"])
    sim.move_event(alice, ids["team_series"], sim.default_calendar_id(alice), immutable_ids=True)
    moved = sim.create_event(alice, calendar_id=team["id"], subject="to move", **slot(4))
    sim.move_event(alice, moved["id"], travel["id"])  # mutable id: a new id in the new calendar
    sim.update_event(alice, ids["series"], subject="series renamed")       # master change
    occurrence = _occurrences(world, alice, ids["series"])[3]
    sim.update_event(alice, occurrence["id"], subject="one exception")    # exception
    sim.delete_event(alice, _occurrences(world, alice, ids["series"])[5]["id"])  # one occurrence gone
    sim.update_event(alice, ids["far"], **slot(5))                         # moves into the window
    _notify(world, alice)
    world.assert_converged(alice)

    extra = sim.create_calendar(alice, "Extra")
    sim.create_event(alice, calendar_id=extra["id"], subject="x", **slot(6))
    sim.delete_event(alice, ids["series"])                                 # whole series (and master row)
    _notify(world, alice)
    world.assert_converged(alice)

    sim.delete_calendar(alice, travel["id"])
    _notify(world, alice)
    world.assert_converged(alice)
    assert travel["id"] not in {c.microsoft_calendar_id for c in world.repo.list_calendars(alice)}


def test_ten_notifications_cost_one_delta_round(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    _seed(world, alice)
    world.link(alice)
    world.drain()
    sim.create_event(alice, subject="burst", **slot(1))
    sim.reset_counters()
    received = time.time()
    for _ in range(10):
        enqueue_sync(SyncRequest(alice, "notification", received_at=received), world.settings)
    outcomes = world.drain()
    assert sorted(o.status for o in outcomes) == ["covered"] * 9 + ["synced"]
    assert sim.counters().get(DELTA) == 1
    world.assert_converged(alice)


def test_killed_backfill_resumes_and_converges(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    _seed(world, alice)
    sim.create_events(alice, [{"subject": f"bulk {i}", **slot(i % 200 - 50, 8 + i % 8)} for i in range(400)])
    world.link(alice)
    with pytest.raises(SimulatedCrash):
        world.drain(crash_after_pages=4)
    partial = len(world.repo.list_events(alice))
    assert 0 < partial < len(world.expected(alice)["events"])
    cursor = world.repo.get_cursor(alice, sim.default_calendar_id(alice))
    assert cursor.next_link and not cursor.delta_link  # mid-round: the deltaLink only comes at the end
    sim.delete_event(alice, world.repo.list_events(alice)[0].microsoft_event_id)  # changes while down
    sim.reset_counters()
    enqueue_sync(SyncRequest(alice, "linked", full=True, subscribe=True), world.settings)
    world.drain()
    assert sim.counters()[DELTA] < 9  # resumed from the stored nextLink, not restarted (400/50 pages)
    _notify(world, alice)  # the deleted event's removal arrives with the next delta round
    world.assert_converged(alice)


def test_expired_delta_token_gives_a_reconciling_round(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    _, _, ids = _seed(world, alice)
    world.link(alice)
    world.drain()
    sim.invalidate_delta_tokens(alice)
    sim.delete_event(alice, ids["single"])
    sim.update_event(alice, ids["series"], subject="renamed while the token died")
    _notify(world, alice)
    world.assert_converged(alice)
    assert ids["single"] not in {e.microsoft_event_id for e in world.repo.list_events(alice)}


def test_moved_window_keeps_rows_inside_it(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    _seed(world, alice)
    old = sim.create_event(alice, subject="old", **slot(-60))
    world.link(alice)
    world.drain()
    world.configure(SYNC_WINDOW_DAYS_BACK="30")
    world.queue("outlook-changes").clear()
    _notify(world, alice)
    world.assert_converged(alice)
    assert old["id"] not in {e.microsoft_event_id for e in world.repo.list_events(alice)}
    kinds = {(m["remote_id"], m["type"]) for m in world.outbound()}
    assert (old["id"], "row.deleted") in kinds
    assert all(t == "row.deleted" for _, t in kinds)  # rows still inside were neither deleted nor rewritten


def test_other_calendars_by_delta_when_enabled(world, no_subscribe, monkeypatch):
    sim = world.sim
    monkeypatch.setattr(sim, "delta_other_calendars", True)
    world.configure(DELTA_OTHER_CALENDARS="true")
    alice = world.user("Alice")
    team, _, ids = _seed(world, alice)
    world.link(alice)
    world.drain()
    world.assert_converged(alice)
    sim.delete_event(alice, ids["team"])
    sim.create_event(alice, calendar_id=team["id"], subject="late", **slot(2))
    sim.reset_counters()
    _notify(world, alice)
    world.assert_converged(alice)
    assert "GET /v1.0/me/calendars/{id}/calendarView" not in sim.counters()


def test_outbound_messages_carry_stable_dedup_ids(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    _, _, ids = _seed(world, alice)
    world.link(alice)
    world.drain()
    first = world.outbound()
    assert first and all(len(m["id"]) == 32 for m in first)
    world.queue("outlook-changes").clear()
    sim.update_event(alice, ids["single"], subject="v2")
    _notify(world, alice)
    changed = world.outbound()
    assert [(m["remote_id"], m["type"]) for m in changed] == [(ids["single"], "row.updated")]
    assert changed[0]["data"]["subject"] == "v2"
    # A replay of the same change (a second worker, a retried message) carries the same id.
    from shared.sync.outbound import dedup_id

    assert changed[0]["id"] == dedup_id(changed[0]["table"], ids["single"], changed[0]["version"], "updated")


def test_unlinked_and_malformed_messages_are_dropped(world, no_subscribe):
    from shared.sync.worker import handle_message

    assert handle_message(b"{not json").status == "dropped"
    assert handle_message(b'{"user_id": "x", "reason": "bogus"}').status == "dropped"
    assert handle_message(SyncRequest("nobody", "notification").to_json()).status == "skipped"


def test_deleted_exception_of_a_series_moved_with_mutable_ids(world, no_subscribe):
    """Replay of the intermittent convergence failure (seed 202): exception, mutable-id move of the
    series into the primary calendar, a sync, then the exception deleted: its row must go."""
    sim = world.sim
    alice = world.user("Alice")
    _team, _travel, ids = _seed(world, alice)
    world.link(alice)
    exception = _occurrences(world, alice, ids["team_series"])[2]
    sim.update_event(alice, exception["id"], subject="one-off")          # made under the pre-move id
    world.drain()
    world.assert_converged(alice)

    moved = sim.move_event(alice, ids["team_series"], sim.default_calendar_id(alice))
    assert moved["id"] != ids["team_series"]
    _notify(world, alice)
    world.assert_converged(alice)
    held = [e for e in world.repo.list_events(alice) if e.data.get("type") == "exception"]
    assert [e.data["subject"] for e in held] == ["one-off"] and held[0].series_master_id == moved["id"]

    sim.delete_event(alice, held[0].microsoft_event_id)                    # the user deletes the exception
    _notify(world, alice)
    world.assert_converged(alice)
    assert held[0].microsoft_event_id not in {e.microsoft_event_id for e in world.repo.list_events(alice)}


@pytest.mark.parametrize("where", ["primary", "listed"])
def test_master_edit_that_changes_no_instance_row(world, no_subscribe, where):
    """A series renamed while each in-window instance is an exception with its own subject: no instance
    row changes, yet the stored master must (delta path for the primary calendar, full listing else)."""
    sim = world.sim
    alice = world.user("Alice")
    calendar = None if where == "primary" else sim.create_calendar(alice, "Team")["id"]
    series = sim.create_event(alice, calendar_id=calendar, subject="weekly", **weekly(3, 2))
    world.link(alice)
    for occurrence in _occurrences(world, alice, series["id"]):
        sim.update_event(alice, occurrence["id"], subject="its own subject")
    world.drain()
    world.assert_converged(alice)

    sim.update_event(alice, series["id"], subject="renamed series")
    _notify(world, alice)
    world.assert_converged(alice)
    master = next(e for e in world.repo.list_events(alice) if e.microsoft_event_id == series["id"])
    assert master.data["subject"] == "renamed series"


def test_a_calendars_notifications_coalesce_per_calendar(world, no_subscribe):
    """Ten notifications of Team cost one round of Team; Travel's own notification is not covered by it,
    and neither touches the calendar list or the other calendars."""
    sim = world.sim
    alice = world.user("Alice")
    team, travel, _ = _seed(world, alice)
    world.link(alice)
    world.drain()
    sim.create_event(alice, calendar_id=team["id"], subject="burst", **slot(1))
    sim.create_event(alice, calendar_id=travel["id"], subject="trip 2", **slot(2))
    sim.reset_counters()
    received = time.time()
    for _ in range(10):
        enqueue_sync(SyncRequest(alice, "notification", received_at=received, calendar_id=team["id"]), world.settings)
    enqueue_sync(SyncRequest(alice, "notification", received_at=received, calendar_id=travel["id"]), world.settings)
    outcomes = world.drain()
    assert sorted(o.status for o in outcomes) == ["covered"] * 9 + ["synced"] * 2
    counters = sim.counters()
    assert counters["GET /v1.0/me/calendars/{id}/calendarView"] == 2  # the simulator lists other calendars
    assert DELTA not in counters and "GET /v1.0/me/calendars" not in counters
    world.assert_converged(alice)
    assert world.repo.get_calendar_subscription(alice, team["id"]).synced_at is not None


def test_auto_falls_back_to_listings_once_and_remembers(world, no_subscribe):
    """DELTA_OTHER_CALENDARS=auto: the unsupported segment is met once per account, then listings."""
    from shared.sync.events import DELTA_FLAG

    sim = world.sim
    alice = world.user("Alice")
    _seed(world, alice)
    world.link(alice)
    world.drain()
    world.assert_converged(alice)
    assert world.repo.get_account(alice).extra[DELTA_FLAG]["supported"] is False
    first = sim.counters().get("GET /v1.0/me/calendars/{id}/calendarView/delta")
    assert first == 1, "one refusal taught the account"
    sim.reset_counters()
    _notify(world, alice)
    assert "GET /v1.0/me/calendars/{id}/calendarView/delta" not in sim.counters()
    assert sim.counters()["GET /v1.0/me/calendars/{id}/calendarView"] == 2


@pytest.mark.parametrize("scope", ["user", "calendar"])
def test_a_calendar_deleted_after_the_list_does_not_stop_the_others(world, no_subscribe, monkeypatch, scope):
    """Regression: a 404 on a calendar deleted between the calendar list and its round failed the whole
    sync "for good" and dropped the message, so the other calendars' changes waited for another sync."""
    import shared.sync.calendars as calendars_module

    sim = world.sim
    alice = world.user("Alice")
    team, _, _ = _seed(world, alice)
    world.link(alice)
    world.drain()
    doomed = sim.create_calendar(alice, "Doomed")["id"]
    sim.create_event(alice, calendar_id=doomed, subject="doomed", **slot(1))
    late = sim.create_event(alice, calendar_id=team["id"], subject="late in team", **slot(2))
    original = calendars_module.sync_calendars

    def list_then_delete(ctx):
        listed = original(ctx)
        if any(c["id"] == doomed for c in listed) and doomed in sim.store.mailbox(alice).calendars:
            sim.delete_calendar(alice, doomed)
        return listed

    monkeypatch.setattr(calendars_module, "sync_calendars", list_then_delete)
    calendar_id = team["id"] if scope == "calendar" else None
    world.configure(CALENDAR_LIST_MAX_AGE_MINUTES="0")
    enqueue_sync(SyncRequest(alice, "notification", calendar_id=calendar_id), world.settings)
    outcomes = world.drain()
    assert [o.status for o in outcomes] == ["synced"]
    assert late["id"] in {e.microsoft_event_id for e in world.repo.list_events(alice)}
    _notify(world, alice)
    world.assert_converged(alice)


def test_a_calendar_list_check_covers_no_calendars_request(world, no_subscribe):
    """Regression: the renewal run's calendar-list check (reason "calendars") stamped the account's sync
    start, so a calendar's notification received before it counted as covered although no round of that
    calendar ran."""
    sim = world.sim
    alice = world.user("Alice")
    team, _, _ = _seed(world, alice)
    world.link(alice)
    world.drain()
    changed = sim.create_event(alice, calendar_id=team["id"], subject="notified before the check", **slot(2))
    received = time.time()
    enqueue_sync(SyncRequest(alice, "calendars"), world.settings)
    assert [o.status for o in world.drain()] == ["synced"]
    enqueue_sync(SyncRequest(alice, "notification", calendar_id=team["id"], received_at=received), world.settings)
    assert [o.status for o in world.drain()] == ["synced"]
    assert changed["id"] in {e.microsoft_event_id for e in world.repo.list_events(alice)}


def test_a_round_of_a_deleted_calendar_lists_and_syncs_new_ones(world, no_subscribe):
    """Regression: when a calendar's round found it deleted (404) and re-read the list, calendars that list
    showed for the first time were stored but never synced; a later calendar-list check saw them as known."""
    sim = world.sim
    alice = world.user("Alice")
    team, _, _ = _seed(world, alice)
    world.link(alice)
    world.drain()
    projects = sim.create_calendar(alice, "Projects")["id"]
    early = sim.create_event(alice, calendar_id=projects, subject="early", **slot(3))
    sim.delete_calendar(alice, team["id"])
    enqueue_sync(SyncRequest(alice, "notification", calendar_id=team["id"]), world.settings)
    assert [o.status for o in world.drain()] == ["synced"]
    assert early["id"] in {e.microsoft_event_id for e in world.repo.list_events(alice)}
    enqueue_sync(SyncRequest(alice, "calendars"), world.settings)
    world.drain()
    world.assert_converged(alice)

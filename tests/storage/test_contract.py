"""The repository contract: the same tests against SQLite, real PostgreSQL and real Azurite."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.storage import migrations, schema
from shared.storage.base import Repository
from shared.storage.postgres import STATEMENT_CACHE_SIZE, PostgresRepository

USER = "user-1"
CAL = "AAMkAGI2/cal+1=="
WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


def event(event_id: str, version: int = 1, **extra) -> dict:
    """A Graph event whose lastModifiedDateTime grows with `version` (7-digit fractions, as Graph sends)."""
    modified = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=version)
    return {
        "id": event_id,
        "subject": f"Meeting {event_id} v{version}",
        "lastModifiedDateTime": modified.strftime("%Y-%m-%dT%H:%M:%S.") + "1234567Z",
        "createdDateTime": "2024-04-01T08:00:00.0000000Z",
        "changeKey": f"ck{version}",
        "isAllDay": False,
        "type": "singleInstance",
        "iCalUId": f"ical-{event_id}",
        "start": {"dateTime": "2024-06-03T09:30:00.0000000", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2024-06-03T10:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "W. Europe Standard Time",
        "originalEndTimeZone": "W. Europe Standard Time",
        **extra,
    }


def test_schema_is_idempotent_and_versioned(repo: Repository):
    repo.ensure_schema()
    repo.ensure_schema()
    assert repo.schema_version() == migrations.MIGRATIONS[-1].version
    assert repo.counts() == {s.name: 0 for s in (schema.USERS, schema.CALENDARS, schema.EVENTS,
                                                 schema.ACCOUNTS, schema.CURSORS)}


def test_user_columns_and_no_write_when_unchanged(repo: Repository):
    repo.upsert_user(USER, {"id": "graph-1", "displayName": "Zoë"}, encrypted_refresh_token="enc-1")
    first = repo.get_user(USER)
    assert first.data == {"id": "graph-1", "displayName": "Zoë"}
    assert first.encrypted_refresh_token == "enc-1"
    assert first.row_created_at.tzinfo is not None

    repo.upsert_user(USER, {"id": "graph-1", "displayName": "Zoë"})  # KEEP: token untouched, nothing changed
    again = repo.get_user(USER)
    assert again.encrypted_refresh_token == "enc-1"
    assert again.row_updated_at == first.row_updated_at

    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    repo.set_events_subscription(USER, "sub-1", expires)
    repo.set_refresh_token(USER, None)
    changed = repo.get_user(USER)
    assert (changed.events_subscription_id, changed.events_subscription_expiration) == ("sub-1", expires)
    assert changed.encrypted_refresh_token is None
    assert changed.row_created_at == first.row_created_at
    assert changed.row_updated_at > first.row_updated_at
    assert [u.microsoft_user_id for u in repo.list_users()] == [USER]
    assert repo.get_user("nobody") is None


def test_event_upsert_is_idempotent_and_keeps_row_created_at(repo: Repository):
    changes = repo.upsert_events(USER, CAL, [event("e1"), event("e2")])
    assert sorted((c.remote_id, c.kind) for c in changes) == [("e1", "created"), ("e2", "created")]
    before = {e.microsoft_event_id: e for e in repo.list_events(USER)}

    assert repo.upsert_events(USER, CAL, [event("e1"), event("e2")]) == []
    assert {e.microsoft_event_id: e.row_updated_at for e in repo.list_events(USER)} == {
        k: v.row_updated_at for k, v in before.items()}

    changes = repo.upsert_events(USER, CAL, [event("e1", 2)])
    assert [(c.remote_id, c.kind, c.data["changeKey"]) for c in changes] == [("e1", "updated", "ck2")]
    after = {e.microsoft_event_id: e for e in repo.list_events(USER, CAL)}
    assert after["e1"].row_created_at == before["e1"].row_created_at
    assert after["e1"].row_updated_at > before["e1"].row_updated_at
    assert after["e2"].row_updated_at == before["e2"].row_updated_at
    assert repo.event_ids(USER, CAL) == {"e1", "e2"}


def test_event_columns_from_graph_json(repo: Repository):
    repo.upsert_events(USER, CAL, [
        event("e1", seriesMasterId="m1", type="occurrence", isCancelled=True),
        event("all-day", isAllDay=True,
              start={"dateTime": "2024-12-31T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
              end={"dateTime": "2025-01-01T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}),
    ])
    rows = {e.microsoft_event_id: e for e in repo.list_events(USER)}
    e1 = rows["e1"]
    assert e1.start_at == datetime(2024, 6, 3, 7, 30, tzinfo=UTC)  # CEST = UTC+2
    assert e1.end_at == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert (e1.start_timezone, e1.original_start_timezone) == ("W. Europe Standard Time", "W. Europe Standard Time")
    assert (e1.is_cancelled, e1.type, e1.series_master_id, e1.ical_uid) == (True, "occurrence", "m1", "ical-e1")
    assert e1.updated == datetime(2024, 5, 1, 0, 0, 1, 123456, tzinfo=UTC)
    assert e1.created == datetime(2024, 4, 1, 8, 0, tzinfo=UTC)
    assert (e1.subject, e1.change_key, e1.microsoft_user_id, e1.microsoft_calendar_id) == (
        "Meeting e1 v1", "ck1", USER, CAL)
    day = rows["all-day"]
    assert day.is_all_day is True
    assert day.start_at == datetime(2024, 12, 31, tzinfo=UTC)  # the date is kept, not shifted by the zone
    assert day.start_timezone == "Tokyo Standard Time"


def test_older_version_never_overwrites(repo: Repository):
    repo.upsert_events(USER, CAL, [event("e1", 5)])
    assert repo.upsert_events(USER, CAL, [event("e1", 3)]) == []
    assert repo.list_events(USER)[0].data["changeKey"] == "ck5"
    # same lastModifiedDateTime, greater changeKey wins; a page repeating an item keeps the newest
    same_time = event("e1", 5, changeKey="ck5b")
    assert len(repo.upsert_events(USER, CAL, [event("e1", 4), same_time, event("e1", 2)])) == 1
    assert repo.list_events(USER)[0].data["changeKey"] == "ck5b"


def test_event_moving_to_another_calendar(repo: Repository):
    repo.upsert_events(USER, CAL, [event("e1")])
    changes = repo.upsert_events(USER, "other-cal", [event("e1")])
    assert [(c.remote_id, c.kind) for c in changes] == [("e1", "updated")]
    assert repo.event_ids(USER, CAL) == set()
    assert repo.event_ids(USER, "other-cal") == {"e1"}


def test_deletes(repo: Repository):
    repo.upsert_calendars(USER, [{"id": CAL, "name": "Calendar", "isDefaultCalendar": True},
                                 {"id": "cal-2", "name": "Other", "isDefaultCalendar": False}])
    repo.upsert_events(USER, CAL, [event("e1"), event("e2"), event("e3")])
    repo.upsert_events(USER, "cal-2", [event("x1")])
    repo.save_page(USER, "cal-2", events=[], removed_ids=[], next_link=None, delta_link="d", window=WINDOW)
    assert sorted(repo.delete_events(USER, ["e1", "e3", "missing"])) == ["e1", "e3"]
    assert repo.delete_events(USER, ["e1"]) == []
    assert repo.event_ids(USER, CAL) == {"e2"}

    assert repo.delete_calendars(USER, ["cal-2", "nope"]) == ["cal-2"]
    assert [c.microsoft_calendar_id for c in repo.list_calendars(USER)] == [CAL]
    assert repo.list_calendars(USER)[0].is_default_calendar is True
    assert repo.event_ids(USER, "cal-2") == set()
    assert repo.get_cursor(USER, "cal-2") is None


def test_unicode_and_awkward_ids(repo: Repository):
    awkward = "AAMk/a+b==#?\\%:ü\t"
    subject = "Réunion 👩‍💻🎉 اجتماع الفريق 会议 ℵ"
    repo.upsert_calendars(USER, [{"id": awkward, "name": "كل شيء 📅"}])
    repo.upsert_events(USER, awkward, [event(awkward, subject=subject, body={"content": "שלום " * 50})])
    row = repo.list_events(USER, awkward)[0]
    assert (row.microsoft_event_id, row.subject, row.microsoft_calendar_id) == (awkward, subject, awkward)
    assert row.data["body"]["content"] == "שלום " * 50
    assert repo.event_ids(USER, awkward) == {awkward}
    assert repo.upsert_events(USER, awkward, [event(awkward, subject=subject, body={"content": "שלום " * 50})]) == []
    assert repo.delete_events(USER, [awkward]) == [awkward]
    assert repo.list_calendars(USER)[0].name == "كل شيء 📅"


@pytest.mark.parametrize("size", [300_000, 1_500_000])
def test_large_bodies_round_trip_whole(repo: Repository, size: int):
    content = ("<p>" + "ä€😀x" * (size // 4) + "</p>")[:size]
    repo.upsert_events(USER, CAL, [event("big", body={"contentType": "html", "content": content})])
    assert repo.list_events(USER)[0].data["body"]["content"] == content
    assert repo.upsert_events(USER, CAL, [event("big", body={"contentType": "html", "content": content})]) == []
    smaller = event("big", 2, body={"contentType": "html", "content": "short"})
    assert len(repo.upsert_events(USER, CAL, [smaller])) == 1
    assert repo.list_events(USER)[0].data == smaller
    assert repo.delete_events(USER, ["big"]) == ["big"]


def test_bulk_write(repo: Repository):
    count = 10_000
    events = [event(f"bulk-{i:05d}", body={"content": f"body {i}"}) for i in range(count)]
    assert len(repo.upsert_events(USER, CAL, events)) == count
    assert repo.counts(USER)[schema.EVENTS.name] == count
    assert repo.upsert_events(USER, CAL, events) == []  # nothing changed: nothing written
    updated = [event(f"bulk-{i:05d}", 2) for i in range(0, count, 10)]
    assert len(repo.upsert_events(USER, CAL, updated)) == count // 10
    assert len(repo.event_ids(USER, CAL)) == count


def test_chunked_write_is_one_unit_in_key_order(repo: Repository):
    repo.chunk_size = 3  # several chunks (PostgreSQL maps each while the server merges the one before)
    if repo.backend == "postgres":
        repo.bulk_strategy = "copy"  # COPY + pipelined merge even for chunks this small
    ids = [f"k{i:02d}" for i in range(11)]
    items = [event(i) for i in reversed(ids)] + [event("k04", 3), event("k04", 2), event("k09", 0)]
    changes = repo.upsert_events(USER, CAL, items)
    assert [(c.remote_id, c.kind) for c in changes] == [(i, "created") for i in ids]
    assert [(e.remote_id, e.kind) for e in repo.pending_changes(USER)] == [(i, "created") for i in ids]
    assert {e.microsoft_event_id: e.change_key for e in repo.list_events(USER)} == {
        i: "ck3" if i == "k04" else "ck1" for i in ids}

    broken = event("k10", 2, start={"dateTime": "not a time", "timeZone": "UTC"})  # fails in the last chunk
    changes = repo.upsert_events(USER, CAL, [event(i, 2) for i in ids[:-1]] + [broken])
    # The row that cannot be mapped is left out (logged); it never stops the others (issue 12).
    assert [c.remote_id for c in changes] == [i for i in ids[:-1] if i != "k04"]
    assert {e.microsoft_event_id: e.change_key for e in repo.list_events(USER)} == {
        i: "ck3" if i == "k04" else "ck1" if i == "k10" else "ck2" for i in ids}


@pytest.mark.parametrize("strategy", ["unnest", "copy", "executemany"])
def test_every_postgres_merge_strategy_has_the_same_effect(pg_repo: PostgresRepository, strategy: str):
    """Page-sized chunks merge through unnest arrays, large ones through COPY; either way (and the
    executemany fallback) older versions never win, unchanged rows are not written, hostile text is cleaned."""
    repo = pg_repo
    repo.bulk_strategy = strategy
    repo.chunk_size = 4
    ids = [f"s{i:02d}" for i in range(10)]
    assert [c.kind for c in repo.upsert_events(USER, CAL, [event(i, 2) for i in ids])] == ["created"] * 10
    assert repo.upsert_events(USER, CAL, [event(i, 2) for i in ids]) == []
    older_or_newer = [event(i, 1 if n % 2 else 3, subject="nul\x00 and \ud800") for n, i in enumerate(ids)]
    changes = repo.upsert_events(USER, CAL, older_or_newer)
    assert [(c.remote_id, c.kind) for c in changes] == [(i, "updated") for i in ids[::2]]
    stored = {e.microsoft_event_id: e for e in repo.list_events(USER)}
    assert {i: stored[i].change_key for i in ids} == {i: "ck2" if n % 2 else "ck3" for n, i in enumerate(ids)}
    assert stored["s00"].subject == "nul\ufffd and \ufffd"
    assert [e.kind for e in repo.pending_changes(USER, limit=100)] == ["created"] * 10 + ["updated"] * 5


def test_concurrent_writers_end_with_the_newest_version(repo: Repository):
    ids = [f"c{i}" for i in range(30)]
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        versions = list(range(1, 9))
        random.Random(seed).shuffle(versions)
        try:
            for version in versions:
                repo.upsert_events(USER, CAL, [event(i, version) for i in ids])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert {e.microsoft_event_id: e.change_key for e in repo.list_events(USER)} == {i: "ck8" for i in ids}


def test_save_page_is_atomic(repo: Repository, monkeypatch):
    repo.upsert_events(USER, CAL, [event("keep")])
    original = repo._put

    def failing_put(tx, spec, partition, rows):
        if spec is schema.CURSORS:
            raise RuntimeError("crash while storing the cursor")
        return original(tx, spec, partition, rows)

    monkeypatch.setattr(repo, "_put", failing_put)
    with pytest.raises(RuntimeError):
        repo.save_page(USER, CAL, events=[event("p1"), event("p2")], removed_ids=["keep"],
                       next_link="https://graph/next", delta_link=None, window=WINDOW)
    monkeypatch.undo()
    assert repo.event_ids(USER, CAL) == {"keep"}
    assert repo.get_cursor(USER, CAL) is None
    assert [(e.remote_id, e.kind) for e in repo.pending_changes(USER)] == [("keep", "created")]  # no outbox entry
    repo.save_page(USER, CAL, events=[event("p1"), event("p2")], removed_ids=["keep"],
                   next_link="https://graph/next", delta_link=None, window=WINDOW)
    assert sorted((e.remote_id, e.kind) for e in repo.pending_changes(USER)[1:]) == [
        ("keep", "deleted"), ("p1", "created"), ("p2", "created")]


def test_save_page_takes_events_prepared_ahead(repo: Repository):
    """The sync maps page n+1 while page n is stored (`prepare_events`): same rows, removals and changes."""
    repo.upsert_events(USER, CAL, [event("gone"), event("same")])
    page = [event("p1"), event("same"), {"id": "gone", "@removed": {"reason": "deleted"}},
            event("bad", start={"dateTime": "not a time", "timeZone": "UTC"})]
    prepared = repo.prepare_events(USER, CAL, page)
    assert repo.event_ids(USER, CAL) == {"gone", "same"}  # preparing writes nothing
    with pytest.raises(ValueError):
        repo.save_page(USER, "cal-2", events=prepared, removed_ids=[], next_link="n", delta_link=None,
                       window=WINDOW)
    result = repo.save_page(USER, CAL, events=prepared, removed_ids=[], next_link="n", delta_link=None,
                            window=WINDOW)
    assert sorted((c.remote_id, c.kind) for c in result.changes) == [("gone", "deleted"), ("p1", "created")]
    assert result.skipped == ["bad"]
    assert repo.event_ids(USER, CAL) == {"p1", "same"}
    assert repo.get_cursor(USER, CAL).next_link == "n"


def test_save_page_cursor_follows_the_round(repo: Repository):
    repo.upsert_events(USER, CAL, [event("gone"), event("stays")])
    repo.upsert_events(USER, "cal-2", [event("elsewhere")])
    result = repo.save_page(USER, CAL, events=[event("p1"), {"id": "gone", "@removed": {"reason": "deleted"}}],
                            removed_ids=["elsewhere"], next_link="https://graph/next1", delta_link=None, window=WINDOW)
    assert sorted((c.remote_id, c.kind) for c in result.changes) == [("gone", "deleted"), ("p1", "created")]
    assert repo.event_ids(USER, "cal-2") == {"elsewhere"}  # removals only apply to the page's calendar
    cursor = repo.get_cursor(USER, CAL)
    assert (cursor.next_link, cursor.delta_link, cursor.window_start, cursor.window_end) == (
        "https://graph/next1", None, *WINDOW)
    repo.save_page(USER, CAL, events=[event("p2")], removed_ids=[], next_link=None,
                   delta_link="https://graph/delta1", window=WINDOW)
    cursor = repo.get_cursor(USER, CAL)
    assert (cursor.next_link, cursor.delta_link, cursor.full_round) == (None, "https://graph/delta1", False)
    repo.save_page(USER, CAL, events=[], removed_ids=[], next_link="https://graph/next2", delta_link=None,
                   window=WINDOW)
    assert repo.get_cursor(USER, CAL).delta_link == "https://graph/delta1"  # kept while the round goes on
    repo.clear_cursor(USER, CAL)
    assert repo.get_cursor(USER, CAL) is None


def test_full_round_deletes_rows_not_seen(repo: Repository):
    repo.upsert_events(USER, CAL, [event("a"), event("b"), event("c"), event("d")])
    repo.upsert_events(USER, "cal-2", [event("other")])
    first = repo.save_page(USER, CAL, events=[event("a"), event("new")], removed_ids=[], next_link="n1",
                           delta_link=None, window=WINDOW, full_round=True)
    assert first.round_id and repo.get_cursor(USER, CAL).full_round
    second = repo.save_page(USER, CAL, events=[event("c", 2)], removed_ids=[], next_link=None,
                            delta_link="delta", window=WINDOW, full_round=True)
    assert second.round_id == first.round_id
    assert sorted(repo.finish_full_round(USER, CAL)) == ["b", "d"]
    assert repo.event_ids(USER, CAL) == {"a", "c", "new"}
    assert repo.event_ids(USER, "cal-2") == {"other"}
    cursor = repo.get_cursor(USER, CAL)
    assert (cursor.full_round, cursor.round_id, cursor.delta_link) == (False, None, "delta")
    assert repo.finish_full_round(USER, CAL) == []


def test_account_state(repo: Repository):
    assert repo.get_account(USER) is None
    state = repo.update_account(USER, status="linked", graph_user_id="g-1", mode="delegated",
                                subscription_lifetime_minutes=4230, extra={"tenant": "t-1", "n": 2**40})
    assert state.status_changed_at is not None
    later = repo.update_account(USER, last_sync_error="boom", last_error_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert (later.status, later.status_changed_at, later.last_sync_error) == ("linked", state.status_changed_at, "boom")
    stored = repo.get_account(USER)
    assert stored == later
    assert stored.extra == {"tenant": "t-1", "n": 2**40}
    assert stored.subscription_lifetime_minutes == 4230
    repo.update_account(USER, status="reauth_required", status_reason="AADSTS700082")
    assert repo.get_account(USER).status_changed_at > state.status_changed_at
    assert [a.microsoft_user_id for a in repo.list_accounts()] == [USER]
    with pytest.raises(TypeError):
        repo.update_account(USER, nonsense=1)


def test_delete_user_removes_everything(repo: Repository):
    for user in (USER, "user-2"):
        repo.upsert_user(user, {"id": user})
        repo.update_account(user, status="linked")
        repo.upsert_calendars(user, [{"id": f"{user}-cal", "isDefaultCalendar": True}])
        repo.save_page(user, f"{user}-cal", events=[event(f"{user}-e1"), event(f"{user}-e2")], removed_ids=[],
                       next_link="n", delta_link=None, window=WINDOW, full_round=True)
    repo.delete_user(USER)
    assert set(repo.counts(USER).values()) == {0}
    assert repo.get_account(USER) is None and repo.get_user(USER) is None
    assert repo.counts("user-2") == {schema.USERS.name: 1, schema.CALENDARS.name: 1, schema.EVENTS.name: 2,
                                     schema.ACCOUNTS.name: 1, schema.CURSORS.name: 1}
    assert repo.counts()[schema.EVENTS.name] == 2


def test_calendar_subscriptions(repo: Repository):
    """One row per (user, calendar): merged updates, listed per user and across users, deleted with the user."""
    assert repo.get_calendar_subscription(USER, CAL) is None
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = repo.update_calendar_subscription(USER, CAL, subscription_id="sub-1", expiration=expires, state="live",
                                            resource=f"me/calendars/{CAL}/events", is_default=True)
    assert (row.subscription_id, row.expiration, row.is_default) == ("sub-1", expires, True)
    repo.update_calendar_subscription(USER, CAL, sync_started_at=expires)  # other fields kept
    repo.update_calendar_subscription(USER, "cal-2", state="capped")
    repo.update_calendar_subscription("user-2", CAL, state="missing")
    stored = repo.get_calendar_subscription(USER, CAL)
    assert (stored.subscription_id, stored.state, stored.sync_started_at) == ("sub-1", "live", expires)
    assert stored.updated_at is not None
    assert sorted(r.microsoft_calendar_id for r in repo.list_calendar_subscriptions(USER)) == sorted([CAL, "cal-2"])
    assert len(repo.list_calendar_subscriptions()) == 3
    with pytest.raises(TypeError):
        repo.update_calendar_subscription(USER, CAL, nope=1)
    repo.delete_calendar_subscriptions(USER, ["cal-2"])
    assert [r.microsoft_calendar_id for r in repo.list_calendar_subscriptions(USER)] == [CAL]
    repo.delete_user(USER)
    assert repo.list_calendar_subscriptions(USER) == []
    assert [r.microsoft_user_id for r in repo.list_calendar_subscriptions()] == ["user-2"]


def test_statement_texts_kept_stay_bounded_whatever_callers_ask(pg_repo: Repository):
    """Composed statements are kept per shape; shapes a caller chooses (column subsets, limits) must not
    grow that store without bound, and every answer stays right."""
    pg_repo.upsert_events(USER, CAL, [event(f"e-{i}") for i in range(3)])
    names = schema.EVENTS.names()
    for limit in range(1, 400):  # a limit is a parameter: one shape for them all
        assert len(pg_repo._select(schema.EVENTS, USER, {"microsoft_user_id": USER}, limit=limit,
                                   columns=["microsoft_event_id"])) == min(limit, 3)
    for width in range(1, len(names)):  # many column subsets: the store stops growing at its size
        for start in range(len(names) - width + 1):
            subset = names[start:start + width]
            assert list(pg_repo._select(schema.EVENTS, USER, {"microsoft_user_id": USER}, columns=subset)[0]) \
                == subset
    assert len(pg_repo._statements) <= STATEMENT_CACHE_SIZE

"""WebhookDB's published columns kept true on every backend: `delta_url` mirrors the cursor's
deltaLink, and `keep_created_at` gives imported rows their original `row_created_at`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.storage import schema
from shared.storage.base import Repository
from tests.storage.test_contract import CAL, USER, WINDOW, event


def delta_url(repo: Repository) -> str | None:
    (calendar,) = repo.list_calendars(USER)
    return calendar.delta_url


def test_delta_url_mirrors_the_cursor_without_counting_as_a_change(repo: Repository):
    repo.upsert_calendars(USER, [{"id": CAL, "name": "Calendar", "isDefaultCalendar": True}])
    before = repo.list_calendars(USER)[0]
    outbox = len(repo.pending_changes(USER))

    repo.save_page(USER, CAL, events=[event("e1")], removed_ids=[], next_link="https://g/next", delta_link=None,
                   window=WINDOW, full_round=True)
    assert delta_url(repo) is None  # a round in progress has no deltaLink yet
    repo.save_page(USER, CAL, events=[event("e2")], removed_ids=[], next_link=None,
                   delta_link="https://g/delta?token=1", window=WINDOW, full_round=True)
    assert delta_url(repo) == repo.get_cursor(USER, CAL).delta_link == "https://g/delta?token=1"
    repo.save_page(USER, CAL, events=[], removed_ids=[], next_link=None, delta_link="https://g/delta?token=2",
                   window=WINDOW)
    assert delta_url(repo) == "https://g/delta?token=2"

    after = repo.list_calendars(USER)[0]
    assert after.row_updated_at == before.row_updated_at and after.data == before.data
    assert [c.table for c in repo.pending_changes(USER)[outbox:]] == [schema.EVENTS.name] * 2

    repo.upsert_calendars(USER, [{"id": CAL, "name": "Renamed", "isDefaultCalendar": True}])
    assert delta_url(repo) == "https://g/delta?token=2"  # the calendar listing never clears it
    repo.clear_cursor(USER, CAL)
    assert delta_url(repo) is None and repo.get_cursor(USER, CAL) is None


def test_keep_created_at_sets_only_that_column_once(repo: Repository):
    repo.upsert_user(USER, {"customer_ref": "a"}, encrypted_refresh_token="enc")
    repo.upsert_calendars(USER, [{"id": CAL, "name": "Calendar"}])
    repo.upsert_events(USER, CAL, [event("e1"), event("e2")])
    events_before = {e.microsoft_event_id: e for e in repo.list_events(USER)}
    outbox = len(repo.pending_changes(USER))
    old = datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)

    assert repo.keep_created_at(schema.USERS.name, USER, {USER: old}) == 1
    assert repo.keep_created_at(schema.CALENDARS.name, USER, {CAL: old + timedelta(days=1)}) == 1
    assert repo.keep_created_at(schema.EVENTS.name, USER, {"e1": old, "e2": old, "unknown": old}) == 2
    assert repo.keep_created_at(schema.EVENTS.name, USER, {"e1": old, "e2": old}) == 0  # a second run: nothing

    user = repo.get_user(USER)
    assert user.row_created_at == old and user.encrypted_refresh_token == "enc" and user.data == {"customer_ref": "a"}
    assert repo.list_calendars(USER)[0].row_created_at == old + timedelta(days=1)
    for row in repo.list_events(USER):
        before = events_before[row.microsoft_event_id]
        assert row.row_created_at == old
        assert (row.row_updated_at, row.data, row.start_at) == (before.row_updated_at, before.data, before.start_at)
    assert len(repo.pending_changes(USER)) == outbox

    repo.upsert_events(USER, CAL, [event("e1", version=2)])  # a later sync keeps the imported age
    assert {e.microsoft_event_id: e.row_created_at for e in repo.list_events(USER)}["e1"] == old


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_made_with_the_earlier_event_column_order_keeps_working(backend, request, tmp_path):
    """No migration reorders a live table: an event table created before (row timestamps right after
    the key, owner ids after them) is used as it is, through the executemany and the COPY paths."""
    from dataclasses import replace

    from shared.storage.fixture import render_table

    by_name = {c.name: c for c in schema.EVENTS.columns}
    earlier = ["microsoft_event_id", "row_created_at", "row_updated_at", "microsoft_calendar_id", "microsoft_user_id"]
    old_spec = replace(schema.EVENTS, columns=tuple(by_name[n] for n in earlier) + tuple(
        c for c in schema.EVENTS.columns if c.name not in earlier))
    ddl = render_table(old_spec, "postgres" if backend == "postgres" else "sqlite", opaque="events",
                       if_not_exists=True)
    if backend == "postgres":
        import psycopg

        from shared.storage.postgres import PostgresRepository

        dsn = request.getfixturevalue("pg_dsn")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in ddl:
                conn.execute(statement)
        repo = PostgresRepository(dsn)
    else:
        import sqlite3

        from shared.storage.sqlite import SqliteRepository

        path = tmp_path / "old.db"
        with sqlite3.connect(path) as conn:
            for statement in ddl:
                conn.execute(statement)
        repo = SqliteRepository(path)
    try:
        repo.ensure_schema()
        repo.upsert_calendars(USER, [{"id": CAL, "name": "Calendar"}])
        repo.upsert_events(USER, CAL, [event(f"e{i:03d}") for i in range(250)])  # COPY on PostgreSQL
        repo.upsert_events(USER, CAL, [event("e000", version=2)])  # executemany
        rows = {e.microsoft_event_id: e for e in repo.list_events(USER)}
        assert len(rows) == 250 and rows["e000"].change_key == "ck2" and rows["e001"].microsoft_calendar_id == CAL
        repo.save_page(USER, CAL, events=[], removed_ids=["e001"], next_link=None, delta_link="https://g/d",
                       window=WINDOW)
        assert "e001" not in repo.event_ids(USER, CAL) and delta_url(repo) == "https://g/d"
        old = datetime(2022, 1, 1, tzinfo=UTC)
        assert repo.keep_created_at(schema.EVENTS.name, USER, {"e002": old}) == 1
        assert repo.list_events(USER)[1].row_created_at == old
    finally:
        repo.close()

"""The transactional outbox: every row change is recorded with the rows, in order, until acknowledged
(all three backends)."""

from __future__ import annotations

import pytest

from shared.storage import Repository, schema
from tests.storage.test_contract import CAL, USER, WINDOW, event

EVENTS, CALENDARS = schema.EVENTS.name, schema.CALENDARS.name


def kinds(repo: Repository, user: str = USER) -> list[tuple[str, str, str]]:
    return [(e.table, e.remote_id, e.kind) for e in repo.pending_changes(user)]


def test_save_page_records_its_changes_with_the_rows(repo: Repository):
    repo.upsert_events(USER, CAL, [event("keep")])
    repo.ack_changes(USER, [e.seq for e in repo.pending_changes(USER)])
    result = repo.save_page(USER, CAL, events=[event("p1"), event("p2", 3)], removed_ids=["keep"],
                            next_link="https://graph/next", delta_link=None, window=WINDOW)
    pending = repo.pending_changes(USER)
    assert [(e.remote_id, e.kind) for e in pending] == [(c.remote_id, c.kind) for c in result.changes]
    assert sorted((e.remote_id, e.kind) for e in pending) == [("keep", "deleted"), ("p1", "created"),
                                                              ("p2", "created")]
    assert [e.seq for e in pending] == sorted(e.seq for e in pending) and len({e.seq for e in pending}) == 3
    p2 = next(e for e in pending if e.remote_id == "p2")
    assert (p2.table, p2.version) == (EVENTS, "ck3")
    # The same page again changes nothing, so records nothing.
    repo.save_page(USER, CAL, events=[event("p1"), event("p2", 3)], removed_ids=["keep"],
                   next_link="https://graph/next", delta_link=None, window=WINDOW)
    assert repo.pending_changes(USER) == pending


def test_every_row_changing_call_records(repo: Repository):
    repo.upsert_calendars(USER, [{"id": CAL, "name": "Main"}, {"id": "cal-2", "name": "Other"}])
    repo.upsert_events(USER, "cal-2", [event("x1"), event("x2")])
    repo.upsert_events(USER, CAL, [event("a"), event("b")])
    repo.delete_events(USER, ["a", "never-there"])
    repo.save_page(USER, CAL, events=[event("c")], removed_ids=[], next_link=None, delta_link="d",
                   window=WINDOW, full_round=True)
    assert repo.finish_full_round(USER, CAL) == ["b"]
    repo.delete_calendars(USER, ["cal-2"])
    assert kinds(repo) == [
        (CALENDARS, CAL, "created"), (CALENDARS, "cal-2", "created"),
        (EVENTS, "x1", "created"), (EVENTS, "x2", "created"), (EVENTS, "a", "created"), (EVENTS, "b", "created"),
        (EVENTS, "a", "deleted"), (EVENTS, "c", "created"), (EVENTS, "b", "deleted"),
        (EVENTS, "x1", "deleted"), (EVENTS, "x2", "deleted"), (CALENDARS, "cal-2", "deleted"),
    ]


def test_pending_in_order_with_a_limit_and_ack(repo: Repository):
    repo.upsert_events(USER, CAL, [event(f"e{i:03}") for i in range(30)])
    repo.upsert_events("user-2", CAL, [event("other")])
    first = repo.pending_changes(USER, limit=12)
    assert [e.remote_id for e in first] == [f"e{i:03}" for i in range(12)]
    repo.ack_changes(USER, [e.seq for e in first] + [10**9])  # unknown ids are ignored
    repo.ack_changes(USER, [first[0].seq])  # and so are ids already acknowledged
    rest = repo.pending_changes(USER)
    assert [e.remote_id for e in rest] == [f"e{i:03}" for i in range(12, 30)]
    repo.ack_changes(USER, [e.seq for e in rest])
    assert repo.pending_changes(USER) == [] and kinds(repo, "user-2") == [(EVENTS, "other", "created")]
    repo.upsert_events(USER, CAL, [event("e000", 2)])
    [later] = repo.pending_changes(USER)
    assert later.seq > rest[-1].seq and later.kind == "updated"  # sequence numbers are never reused


def test_select_reads_chosen_columns_of_the_named_rows(repo: Repository):
    """The publisher's read: current data of the rows its entries name, in one query per table."""
    big = event("big", 5, body={"content": "x" * 60_000})
    repo.upsert_events(USER, CAL, [big, event("small"), event("other")])
    rows = repo.select(EVENTS, USER, ["microsoft_event_id", "data"], microsoft_event_id=["big", "small", "gone"])
    assert {r["microsoft_event_id"]: r["data"] for r in rows} == {"big": big, "small": event("small")}
    assert repo.select(EVENTS, USER, ["microsoft_event_id"], microsoft_event_id=[]) == []
    assert repo.select(EVENTS, "someone-else", ["microsoft_event_id"], microsoft_event_id=["big"]) == []
    with pytest.raises(ValueError):
        repo.select(EVENTS, USER, ["no_such_column"])
    with pytest.raises(ValueError):
        repo.select(schema.ACCOUNTS.name, USER, ["status"])


def test_a_page_too_big_for_one_transaction_records_every_change(repo: Repository):
    """Table Storage splits this unit (3 operations per event); the entries are all there, in order."""
    ids = [f"n{i:03}" for i in range(120)]
    repo.save_page(USER, CAL, events=[event(i) for i in ids], removed_ids=[], next_link="n", delta_link=None,
                   window=WINDOW, full_round=True)
    assert [e.remote_id for e in repo.pending_changes(USER)] == ids
    assert repo.event_ids(USER, CAL) == set(ids)


def test_delete_user_drops_the_outbox(repo: Repository):
    repo.upsert_events(USER, CAL, [event("a")])
    repo.upsert_events("user-2", CAL, [event("b")])
    repo.delete_user(USER)
    assert repo.pending_changes(USER) == [] and kinds(repo, "user-2") == [(EVENTS, "b", "created")]


def test_entries_carry_the_row_data_as_written(repo: Repository):
    import json

    repo.upsert_events(USER, CAL, [event("d1"), event("d2", 2, body={"content": "x" * 70_000})])
    repo.delete_events(USER, ["d1"])
    by_key = {(e.remote_id, e.kind): e for e in repo.pending_changes(USER)}
    stored = next(e for e in repo.list_events(USER) if e.microsoft_event_id == "d2")
    assert json.loads(by_key[("d1", "created")].data or "null") == event("d1")
    assert by_key[("d1", "deleted")].data is None
    assert by_key[("d2", "created")].data is None  # too large to keep: the publisher reads it back
    assert stored.change_key == "ck2"


def test_migration_5_keeps_earlier_entries_readable(tmp_path, monkeypatch):
    from shared.storage import migrations
    from shared.storage.sqlite import SqliteRepository

    path = tmp_path / "old.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])  # a database from before it
    old = SqliteRepository(path)
    old.ensure_schema()
    with old._transaction(USER) as conn:
        conn.execute("INSERT INTO microsoft_calendar_outbox_v1 (microsoft_user_id, seq, row_table, remote_id, kind, "
                     "version, created_at) VALUES (?, 1, ?, 'old', 'created', 'ck1', '2026-01-01T00:00:00+00:00')",
                     (USER, EVENTS))
        conn.execute("INSERT INTO microsoft_calendar_outbox_seq_v1 (microsoft_user_id, last_seq) VALUES (?, 1)",
                     (USER,))
    old.close()
    monkeypatch.undo()
    repo = SqliteRepository(path)
    repo.ensure_schema()
    assert repo.schema_version() == 5
    repo.upsert_events(USER, CAL, [event("new")])
    pending = repo.pending_changes(USER)
    assert [(e.remote_id, e.data is None) for e in pending] == [("old", True), ("new", False)]
    repo.close()

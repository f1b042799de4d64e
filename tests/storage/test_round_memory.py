"""Ending a full round in chunks chosen by the database (issue 19: memory independent of the mailbox)."""

from __future__ import annotations

import tracemalloc

import pytest

from shared.storage import Repository, schema
from tests.storage.conftest import make_repository
from tests.storage.test_contract import CAL, USER, WINDOW, event
from tests.storage.test_outbox import kinds

EVENTS = schema.EVENTS.name


def start_round(repo: Repository, seen: list[str], calendar: str = CAL) -> None:
    """A full round that wrote `seen` (one page) and is ready to finish."""
    repo.save_page(USER, calendar, events=[event(i) for i in seen], removed_ids=[], next_link=None,
                   delta_link="https://graph/delta", window=WINDOW, full_round=True)


def test_finish_in_chunks_deletes_each_unseen_row_once(repo: Repository):
    repo.upsert_events(USER, CAL, [event(f"old-{i}") for i in range(7)] + [event("kept")])
    repo.upsert_events(USER, "cal-2", [event("elsewhere")])
    start_round(repo, ["kept", "new"])
    repo.reconcile_chunk = 2  # 7 unseen rows: four units, the last one ends the round
    before = len(kinds(repo))

    assert sorted(repo.finish_full_round(USER, CAL)) == [f"old-{i}" for i in range(7)]
    assert repo.event_ids(USER, CAL) == {"kept", "new"}
    assert repo.event_ids(USER, "cal-2") == {"elsewhere"}
    assert sorted(kinds(repo)[before:]) == [(EVENTS, f"old-{i}", "deleted") for i in range(7)]
    cursor = repo.get_cursor(USER, CAL)
    assert (cursor.full_round, cursor.round_id, cursor.delta_link) == (False, None, "https://graph/delta")
    assert repo._select(schema.SEEN, USER, {"microsoft_user_id": USER}) == []  # markers gone with the round
    assert repo.finish_full_round(USER, CAL) == []


def test_finish_interrupted_between_chunks_resumes(repo: Repository):
    repo.upsert_events(USER, CAL, [event(f"old-{i}") for i in range(5)] + [event("kept")])
    start_round(repo, ["kept"])
    repo.reconcile_chunk = 2
    before = len(kinds(repo))
    real = repo._delete_unseen
    calls = []

    def dies_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    repo._delete_unseen = dies_on_second_chunk
    with pytest.raises(RuntimeError):
        repo.finish_full_round(USER, CAL)
    assert len(repo.event_ids(USER, CAL)) == 4  # the first chunk is committed with its outbox entries
    assert repo.get_cursor(USER, CAL).full_round  # the round has not ended: the next sync finishes it
    repo._delete_unseen = real

    assert len(repo.finish_full_round(USER, CAL)) == 3
    assert repo.event_ids(USER, CAL) == {"kept"}
    assert sorted(kinds(repo)[before:]) == [(EVENTS, f"old-{i}", "deleted") for i in range(5)]
    assert not repo.get_cursor(USER, CAL).full_round


def test_clear_cursor_drops_the_round_markers(repo: Repository):
    start_round(repo, ["a", "b"])
    repo.save_page(USER, "cal-2", events=[event("c")], removed_ids=[], next_link="n", delta_link=None,
                   window=WINDOW, full_round=True)
    repo.clear_cursor(USER, CAL)
    assert repo.get_cursor(USER, CAL) is None
    markers = repo._select(schema.SEEN, USER, {"microsoft_user_id": USER}, columns=["microsoft_event_id"])
    assert [m["microsoft_event_id"] for m in markers] == ["c"]  # the other calendar's round goes on


def finish_peak(repo: Repository, calendar: str, rows: int) -> int:
    """Python memory at the peak of finishing a round over `rows` rows (10 of them unseen)."""
    repo.upsert_events(USER, calendar, [event(f"{calendar}-gone-{i}") for i in range(10)])
    start_round(repo, [f"{calendar}-{i:06d}" for i in range(rows)], calendar)
    tracemalloc.start()
    try:
        deleted = repo.finish_full_round(USER, calendar)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(deleted) == 10
    return peak


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_finish_memory_does_not_grow_with_the_calendar(backend, request, tmp_path):
    """Ten times the rows must not take ten times the memory (with the ids held in sets it was 10x)."""
    repo = make_repository(backend, request, tmp_path)
    repo.ensure_schema()
    try:
        small, large = finish_peak(repo, "small", 500), finish_peak(repo, "large", 5_000)
    finally:
        repo.close()
    assert large < 1.5 * small + 64 * 1024, (small, large)


def test_distinct_answers_with_values_not_rows(repo: Repository):
    repo.upsert_events(USER, CAL, [event("m1", type="seriesMaster"),
                                   event("o1", type="occurrence", seriesMasterId="m1"),
                                   event("o2", type="occurrence", seriesMasterId="m1"),
                                   event("x1", type="exception", seriesMasterId="m2"),
                                   event("s1", type="singleInstance")])
    repo.upsert_events(USER, "cal-2", [event("o3", type="occurrence", seriesMasterId="m3")])
    assert repo.distinct(EVENTS, USER, "series_master_id", microsoft_calendar_id=CAL) == {"m1", "m2"}
    assert repo.distinct(EVENTS, USER, "series_master_id", microsoft_calendar_id=CAL,
                         type=["exception"]) == {"m2"}
    assert repo.distinct(EVENTS, USER, "type", microsoft_calendar_id="cal-2") == {"occurrence"}
    assert repo.distinct(EVENTS, "someone-else", "series_master_id") == set()
    assert repo.distinct(EVENTS, USER, "series_master_id", type=[]) == set()
    with pytest.raises(ValueError):
        repo.distinct(EVENTS, USER, "no_such_column")


def _rows_read_from(plan: dict, relation: str) -> int:
    """Rows the plan's nodes on `relation` produced, over all their executions (EXPLAIN ANALYZE)."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == relation else 0
    return own + sum(_rows_read_from(child, relation) for child in plan.get("Plans", []))


def test_finishing_a_round_reads_each_marker_once_whatever_the_statistics(pg_repo: Repository):
    """Fresh tables, never analyzed: PostgreSQL believed the calendar held one row and planned NOT EXISTS
    as a nested loop reading every marker for every row (2,020,050 marker rows read here; 13 s for
    10,000 events). The deletion must read the markers once, so a round's end stays linear."""
    rows = 2_000
    pg_repo.upsert_events(USER, CAL, [event(f"gone-{i}") for i in range(10)])
    start_round(pg_repo, [f"{i:06d}" for i in range(rows)])
    round_id = pg_repo.get_cursor(USER, CAL).round_id
    statement = pg_repo.delete_unseen.format(p="%s")
    with pg_repo.pool.connection() as conn, conn.transaction(force_rollback=True):
        (explained,), = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}",
                                     (USER, CAL, USER, CAL, round_id, 1000)).fetchall()
    markers_read = _rows_read_from(explained[0]["Plan"], schema.SEEN.name)
    assert markers_read <= 2 * rows, markers_read
    assert sorted(pg_repo.finish_full_round(USER, CAL)) == [f"gone-{i}" for i in range(10)]

"""What the two SQL backends share: the operational statements of `migrations.py`.

Leases, outbox sequence numbers and used sign-in states are one statement each,
written once in `migrations.py` with a `{p}` placeholder; PostgreSQL (`%s`) and
SQLite (`?`) run them through these methods. Both drivers' connections answer
`execute(...)` with a cursor that has `fetchone()` and `rowcount`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from shared.storage import base, migrations
from shared.storage.schema import EVENTS, SEEN

# A finishing round's deletion, chosen by the database: the calendar's event rows without a marker of
# the round, a chunk at a time (in id order, one lock order for concurrent writers), ids returned.
# EXCEPT, not NOT EXISTS: a set operation runs as one hash or sort pass whatever the planner believes.
# With NOT EXISTS, PostgreSQL planned a nested loop from the statistics of tables that had just grown
# from empty (or of the marker table, emptied after every round), probing every marker for every row:
# 13 s for 10,000 events, quadratic in the calendar (tests/storage/test_round_memory.py). Parameters:
# user, calendar, user, calendar, round, limit.
UNSEEN_IDS = (
    f"SELECT e.microsoft_event_id FROM {EVENTS.name} e "  # noqa: S608 (names from the schema)
    "WHERE e.microsoft_user_id = {p} AND e.microsoft_calendar_id = {p} "
    f"EXCEPT SELECT s.microsoft_event_id FROM {SEEN.name} s "
    "WHERE s.microsoft_user_id = {p} AND s.microsoft_calendar_id = {p} AND s.round_id = {p} "
    "ORDER BY 1 LIMIT {p}"
)
DELETE_UNSEEN = (
    f"DELETE FROM {EVENTS.name} WHERE microsoft_event_id IN ({UNSEEN_IDS}) "  # noqa: S608
    "RETURNING microsoft_event_id"
)
PURGE_SEEN = f"DELETE FROM {SEEN.name} WHERE microsoft_user_id = {{p}} AND microsoft_calendar_id = {{p}}"  # noqa: S608


def updates_by_columns(updates: dict[str, dict[str, Any]],
                       encode: Callable[[str, Any], Any]) -> dict[tuple[str, ...], list[list[Any]]]:
    """`_set_columns` input grouped for executemany: per set of column names, the rows' parameters
    (`encode(name, value)` for each column in that order, then the key)."""
    grouped: dict[tuple[str, ...], list[list[Any]]] = {}
    for key, values in updates.items():
        names = tuple(sorted(values))
        grouped.setdefault(names, []).append([encode(n, values[n]) for n in names] + [key])
    return grouped


class SqlCursor(Protocol):
    """What the shared statements read of a psycopg or sqlite3 cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...  # a row tuple of the driver, or None

    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    """A psycopg or sqlite3 connection, as far as the shared statements use it."""

    def execute(self, query: str, params: tuple[Any, ...], /) -> SqlCursor: ...


ConnT = TypeVar("ConnT", bound=SqlConnection)


class SqlRepository(base.RepositoryBase[ConnT], Generic[ConnT]):
    """The statements both SQL backends run the same way, over their own connection type."""

    placeholder: str  # the driver's parameter marker
    delete_unseen = DELETE_UNSEEN  # a backend may phrase the outer DELETE its planner's way

    def _run(self, conn: ConnT, statement: str, params: tuple[Any, ...]) -> SqlCursor:
        return conn.execute(statement.format(p=self.placeholder), params)

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now_ms = int(time.time() * 1000)
        with self._transaction(name) as conn:
            row = self._run(conn, migrations.ACQUIRE_LEASE,
                            (name, owner, now_ms + int(ttl_seconds * 1000), now_ms)).fetchone()
        return row is not None

    def release_lease(self, name: str, owner: str) -> None:
        with self._transaction(name) as conn:
            self._run(conn, migrations.RELEASE_LEASE, (name, owner))

    def _allocate(self, tx: ConnT, user_id: str, count: int) -> int:
        return int(self._run(tx, migrations.ALLOCATE_OUTBOX_SEQ, (user_id, count)).fetchone()[0])

    def _delete_unseen(self, tx: ConnT, user_id: str, calendar_id: str, round_id: str, after: str | None,
                       limit: int) -> tuple[list[str], str | None]:
        """One statement; the next call starts over (`after` unused): the rows deleted here are gone."""
        params = (user_id, calendar_id, user_id, calendar_id, round_id, limit)
        rows = self._run(tx, self.delete_unseen, params).fetchall()
        return [row[0] for row in rows], None

    def _purge_seen(self, user_id: str, calendar_id: str) -> None:
        with self._transaction(user_id) as conn:
            self._run(conn, PURGE_SEEN, (user_id, calendar_id))

    def _claim_flow(self, key: str, expires_at_ms: int) -> bool:
        with self._transaction(key) as conn:
            return self._run(conn, migrations.CLAIM_FLOW, (key, expires_at_ms)).fetchone() is not None

    def _sweep_flows(self, now_ms: int) -> int:
        with self._transaction("") as conn:
            swept = self._run(conn, migrations.SWEEP_FLOWS, (now_ms,))
        return int(swept.rowcount)  # read after the unit: a pipelined unit has the count once it is synced

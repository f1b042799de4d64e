"""The repository's machinery above the backends: units of work, upserts and the outbox write.

A backend implements the primitives declared here (`_transaction`, `_fetch_stored`, `_write_rows`,
`_select`, `_delete`, `_put`, `_count`, `_allocate`, `_set_columns`, flows and leases) and may replace
`_upsert_rows` with a single native statement when it renders the same rule
(`rows.newer_and_different_sql`), or `_upsert_ordered` to map the next chunk of rows while the
database writes the current one. The table semantics built on them live beside this module, one
concern each (accounts.py, replica.py, rounds.py, outbox.py, flows.py); `base.Repository` joins them.

Transactional outbox: every call that changes user, calendar or event rows records each
`ChangedRow` in the outbox in the same unit (`_record`), so a change is never stored without its
pending event.
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from shared.storage import textsafety
from shared.storage.rows import (
    Incoming,
    Mapped,
    Stored,
    change_version,
    chunks,
    dedupe,
    incoming,
    map_batch,
    should_write,
    utcnow,
)
from shared.storage.schema import (
    EVENTS,
    OUTBOX,
    TableSpec,
)
from shared.storage.textsafety import TextRules
from shared.storage.types import (
    ChangedRow,
)

log = logging.getLogger("shared.storage")


class Conflict(Exception):
    """A concurrent writer changed a row between our read and our write; the unit is retried."""


OUTBOX_DATA_UTF16_UNITS = 30_000  # one Table Storage string property holds 32 K UTF-16 units


def outbox_data(change: ChangedRow) -> str | None:
    """The row's JSON as the outbox keeps it for the publisher (the write's canonical text when it has
    one); None for a deletion or a row too large to keep in one property (the publisher reads such a
    row back, and a queue message could not hold it)."""
    if change.data is None or change.kind == "deleted":
        return None
    text = change.text if change.text is not None else textsafety.dumps(change.data)
    if len(text) <= OUTBOX_DATA_UTF16_UNITS // 2:  # at most two units per character: no need to count
        return text
    return text if len(text.encode("utf-16-le")) <= 2 * OUTBOX_DATA_UTF16_UNITS else None


def outbox_row(user_id: str, seq: int, change: ChangedRow, now: datetime) -> dict[str, Any]:
    """The OUTBOX row recording one change: what changed and the row's data as written, so publishing
    reads no rows back."""
    return {"microsoft_user_id": user_id, "seq": seq, "row_table": change.table, "remote_id": change.remote_id,
            "kind": change.kind, "version": change_version(change.data), "created_at": now,
            "row_data": outbox_data(change)}


# (table, key) -> (kind, digest) of the rows the current `_atomic` unit has tried to write so far.
TxT = TypeVar("TxT")  # a backend's open unit of work: what `_transaction` yields, handed back to its primitives
T = TypeVar("T")

Kind = Literal["created", "updated", "deleted"]
_ATTEMPTED: ContextVar[dict[tuple[str, str], tuple[Kind, str]] | None] = ContextVar("attempted_writes", default=None)


class RepositoryCore(ABC, Generic[TxT]):
    """The primitives a backend implements and the machinery every table's semantics uses."""

    backend: str = "abstract"
    chunk_size: int = 500
    max_attempts: int = 8
    # Map every incoming row before the unit starts (short transactions; bad input fails before any
    # write). A backend whose `_upsert_ordered` overlaps mapping with the database's work sets False.
    map_ahead: bool = True
    text_rules: TextRules = textsafety.AS_IS  # what the backend stores as is (textsafety.py)
    reconcile_chunk: int = 1000  # unseen rows a finishing round deletes (and records) per unit

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def ensure_schema(self) -> None:
        """Create or migrate every table (idempotent, versioned)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _transaction(self, partition: str) -> AbstractContextManager[TxT]:
        """A unit of work; commits on success, discards on exception where the backend can."""

    def _fetch_stored(self, tx: TxT, spec: TableSpec, partition: str, keys: list[str]) -> dict[str, Stored]:
        """What is stored for these keys (used by the generic `_upsert_rows`)."""
        raise NotImplementedError(f"{self.backend} overrides _upsert_rows")

    def _write_rows(self, tx: TxT, spec: TableSpec, partition: str,
                    writes: list[tuple[Mapped, Stored | None]], now: datetime) -> None:
        """Insert (stored None) or update rows decided by `should_write`; raise Conflict on a lost race."""
        raise NotImplementedError(f"{self.backend} overrides _upsert_rows")

    @abstractmethod
    def _select(self, spec: TableSpec, partition: str | None, filters: dict[str, Any], tx: TxT | None = None,
                columns: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows whose columns equal the filters (a list/set/tuple value means IN), decoded to Python,
        in key order; at most `limit` of them."""

    @abstractmethod
    def _delete(self, tx: TxT, spec: TableSpec, partition: str, filters: dict[str, Any]) -> list[str]:
        """Delete matching rows; return the last key column of each deleted row."""

    @abstractmethod
    def _put(self, tx: TxT, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """Insert or fully replace rows of an operational (non-replicated) table."""

    def _append(self, tx: TxT, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows whose keys are new (outbox entries under freshly allocated numbers).

        Same effect as `_put`; a backend with a faster bulk insert overrides it.
        """
        self._put(tx, spec, partition, rows)

    @abstractmethod
    def _count(self, spec: TableSpec, partition: str | None) -> int: ...

    @abstractmethod
    def _set_columns(self, tx: TxT, spec: TableSpec, partition: str, updates: dict[str, dict[str, Any]]) -> None:
        """Set plain columns (not data, not the key) of existing rows, remote key -> values, as given:
        no version check, no `row_updated_at`, no outbox entry. Callers check the rows exist in `tx`."""

    @abstractmethod
    def _allocate(self, tx: TxT, user_id: str, count: int) -> int:
        """Reserve `count` outbox sequence numbers for the user inside `tx`; returns the last one.

        Serializes the user's writers until `tx` ends (row lock, or an If-Match write that fails the
        transaction with Conflict), so one user's seq order is their commit order.
        """

    @abstractmethod
    def _delete_unseen(self, tx: TxT, user_id: str, calendar_id: str, round_id: str, after: str | None,
                       limit: int) -> tuple[list[str], str | None]:
        """Delete up to `limit` of the calendar's event rows that have no round marker (SEEN) of `round_id`.

        Returns their ids and where the next call may resume its scan (passed back as `after`; None
        starts from the beginning). The database picks the rows, so neither the calendar's ids nor
        the round's markers are ever held in memory (issue 19: memory independent of the mailbox).
        """

    @abstractmethod
    def _purge_seen(self, user_id: str, calendar_id: str) -> None:
        """Delete every round marker of the calendar, in batches of bounded size (outside any unit)."""

    @abstractmethod
    def _distinct(self, spec: TableSpec, partition: str, column: str, filters: dict[str, Any]) -> set[Any]:
        """The distinct non-null values of `column` among the rows matching `filters` (held as values, not rows)."""

    @abstractmethod
    def _claim_flow(self, key: str, expires_at_ms: int) -> bool:
        """Insert the marker `key` unless it exists; True for the one caller whose insert made it."""

    @abstractmethod
    def _sweep_flows(self, now_ms: int) -> int:
        """Delete flows that expired before `now_ms`; returns how many."""

    # ------------------------------------------------------------------ leases
    @abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take (or extend) lease `name` for `owner` unless another owner holds an unexpired one.

        Atomic across processes and instances: the sync worker uses it so that
        one user is synced by one worker at a time.
        """

    @abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give lease `name` back if `owner` still holds it."""

    # ------------------------------------------------------------------ shared machinery
    def _atomic(self, partition: str, unit: Callable[[TxT], T]) -> T:
        """Run `unit(tx)` in one transaction, again from the start when a concurrent writer won a race.

        A backend without multi-batch transactions (Table Storage) may have applied part of a failed
        attempt; `_attempted` remembers what each attempt wrote, so a retry still reports those rows
        as changed instead of finding them already stored and dropping them from the result.
        """
        token = _ATTEMPTED.set({})
        try:
            for attempt in range(self.max_attempts):
                try:
                    with self._transaction(partition) as tx:
                        return unit(tx)
                except Conflict:
                    if attempt == self.max_attempts - 1:
                        raise
                    time.sleep(random.uniform(0, 0.01 * 2 ** attempt))
            raise AssertionError("unreachable")
        finally:
            _ATTEMPTED.reset(token)

    def _upsert_rows(self, tx: TxT, spec: TableSpec, partition: str, rows: list[Mapped],
                     now: datetime) -> list[ChangedRow]:
        stored = self._fetch_stored(tx, spec, partition, [r.key for r in rows])
        attempted = _ATTEMPTED.get()
        changes: list[ChangedRow] = []
        writes: list[tuple[Mapped, Stored | None]] = []
        for row in rows:
            found = stored.get(row.key)
            earlier = attempted.get((spec.name, row.key)) if attempted is not None else None
            if found is None or should_write(found, row):
                writes.append((row, found))
                kind: Kind = earlier[0] if earlier else ("updated" if found else "created")
                changes.append(ChangedRow(spec.name, row.key, kind, row.data, row.text))
            elif earlier is not None and earlier[1] == row.digest == found.digest:
                # an earlier attempt wrote it
                changes.append(ChangedRow(spec.name, row.key, earlier[0], row.data, row.text))
        if writes:
            if attempted is not None:
                for row, found in writes:
                    attempted[(spec.name, row.key)] = (
                        attempted.get((spec.name, row.key), ("updated" if found else "created",))[0], row.digest)
            self._write_rows(tx, spec, partition, writes, now)
        return changes

    def _upsert(self, tx: TxT, spec: TableSpec, partition: str, rows: Iterable[Incoming]) -> list[ChangedRow]:
        ordered = sorted(dedupe(rows), key=lambda r: r.key)  # one lock order for concurrent writers
        return self._upsert_ordered(tx, spec, partition, [list(c) for c in chunks(ordered, self.chunk_size)],
                                    utcnow())

    def _upsert_ordered(self, tx: TxT, spec: TableSpec, partition: str, batches: list[list[Incoming]],
                        now: datetime) -> list[ChangedRow]:
        """Write the chunks in this order, each mapped when it is written; the changes in key order."""
        changes: list[ChangedRow] = []
        for batch in batches:
            rows = map_batch(batch)
            if rows:
                changes += self._upsert_rows(tx, spec, partition, rows, now)
        return changes

    def _incoming(self, spec: TableSpec, items: Iterable[dict[str, Any]], context: dict[str, Any],
                  managed: dict[str, Any] | None = None) -> list[Incoming]:
        rows = []
        for data in items:
            try:
                rows.append(incoming(spec, data, context, managed, self.text_rules))
            except (TypeError, ValueError) as exc:  # no usable id: nothing to store it under
                log.error("%s: an item without a usable id skipped (%s)", spec.name, exc)
        if self.map_ahead:
            map_batch(rows)
        return rows

    def _record(self, tx: TxT, user_id: str, changes: list[ChangedRow]) -> list[ChangedRow]:
        """Append `changes` to the user's outbox inside `tx` (the unit that made them); returns them."""
        if changes:
            last = self._allocate(tx, user_id, len(changes))
            now = utcnow()
            first = last - len(changes) + 1
            self._append(tx, OUTBOX, user_id, [outbox_row(user_id, first + i, c, now) for i, c in enumerate(changes)])
        return changes

    def _get(self, spec: TableSpec, partition: str, key: dict[str, Any],
             tx: TxT | None = None) -> dict[str, Any] | None:
        rows = self._select(spec, partition, key, tx)
        return rows[0] if rows else None

    def _event_rows(self, user_id: str, calendar_id: str, events: Iterable[dict[str, Any]]) -> list[Incoming]:
        return self._incoming(EVENTS, events, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})

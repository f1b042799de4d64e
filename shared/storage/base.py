"""The repository's semantics, written once above the backends.

Callers only see the public methods of `Repository`. Newer-wins, change
detection, de-duplication, chunking, row mapping and the page/round logic live
here; a backend implements a handful of primitives (`_transaction`,
`_fetch_stored`, `_write_rows`, `_select`, `_delete`, `_put`, `_count`,
`_allocate`, `_set_columns`) and may replace `_upsert_rows` with a single native statement when
it renders the same rule (`newer_and_different_sql`), or `_upsert_ordered` to
map the next chunk of rows while the database writes the current one.

Transactional outbox: every call that changes calendar or event rows records
each `ChangedRow` in the outbox in the same unit (`_record`), so a change is
never stored without its pending event; `shared/sync/outbound.py` publishes
`pending_changes` to the outbound queue and `ack_changes` them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.storage import schema, textsafety
from shared.storage.schema import (
    ACCOUNTS,
    CALENDAR_SUBSCRIPTIONS,
    CALENDARS,
    CURSORS,
    EVENTS,
    OUTBOX,
    OUTBOX_SEQ,
    SEEN,
    USERS,
    TableSpec,
)
from shared.storage.textsafety import TextRules
from shared.storage.types import (
    KEEP,
    AccountState,
    CalendarRow,
    CalendarSubscription,
    ChangedRow,
    EventRow,
    OutboxEntry,
    PageResult,
    SyncCursor,
    UserRow,
)

ACCOUNT_STATUSES = ("linked", "reauth_required", "unlinked")
ACCOUNT_MODES = ("delegated", "app_only")
# A queue message holds 48 KB of text (64 KB once base64-encoded); a row whose JSON is bigger is published


# (table, key) -> (kind, digest) of the rows the current `_atomic` unit has tried to write so far.
_ATTEMPTED: ContextVar[dict[tuple[str, str], tuple[str, str]] | None] = ContextVar("attempted_writes", default=None)


log = logging.getLogger("shared.storage")


class Conflict(Exception):
    """A concurrent writer changed a row between our read and our write; the unit is retried."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def canonical_json(data: Any) -> str:
    """One text per JSON value (sorted keys, compact, UTF-8), so stored data can be compared as
    text or digest. orjson: this runs once per row on the bulk-write path, 4x faster than json
    (`textsafety.dumps` falls back to json for the text orjson refuses)."""
    return textsafety.dumps(data)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class Mapped:
    """An incoming row: the column values this write sets, and its data."""

    key: str
    values: dict[str, Any]  # key, derived, context and explicitly given managed columns (not meta, not data)
    data: dict[str, Any]
    text: str
    digest: str
    version: str
    compared: tuple[str, ...] = ()  # non-derived columns whose change alone is a real change


@dataclass
class Stored:
    """What change detection needs to know about a stored row."""

    key: str
    version: str
    digest: str
    columns: dict[str, Any] = field(default_factory=dict)  # context/managed/meta values as stored
    etag: Any = None


COUNTER_ROUNDS = 20


def change_version(data: dict[str, Any] | None) -> str:
    """The version an outbound event carries (and its de-dup id hashes): changeKey, else lastModified/etag."""
    if not data:
        return ""
    return str(data.get("changeKey") or data.get("lastModifiedDateTime") or data.get("@odata.etag") or "")


def outbox_row(user_id: str, seq: int, change: ChangedRow, now: datetime) -> dict[str, Any]:
    """The OUTBOX row recording one change: what changed, not the data (the publisher reads the row)."""
    return {"microsoft_user_id": user_id, "seq": seq, "row_table": change.table, "remote_id": change.remote_id,
            "kind": change.kind, "version": change_version(change.data), "created_at": now}


def is_older(new_version: str, stored_version: str) -> bool:
    """Versions are sortable texts; an unknown ('') version is never older nor newer."""
    return bool(new_version) and bool(stored_version) and new_version < stored_version


def should_write(stored: Stored, row: Mapped) -> bool:
    """Newer-or-equal AND different: older versions never overwrite, unchanged rows are not written."""
    if is_older(row.version, stored.version):
        return False
    if row.digest != stored.digest:
        return True
    return any(stored.columns.get(name) != row.values.get(name) for name in row.compared)


def newer_and_different_sql(spec: TableSpec, compared: Iterable[str], stored: str, new: str) -> str:
    """`should_write` rendered for SQL `ON CONFLICT ... DO UPDATE ... WHERE` (identifiers are spec names)."""
    different = [f"{stored}.data IS DISTINCT FROM {new}.data"]
    different += [f"{stored}.{name} IS DISTINCT FROM {new}.{name}" for name in compared]
    clause = f"({' OR '.join(different)})"
    if spec.versioned:
        clause = (f"NOT (COALESCE({new}.row_version, '') <> '' AND COALESCE({stored}.row_version, '') <> '' "
                  f"AND {new}.row_version < {stored}.row_version) AND {clause}")
    return clause


def row_key(spec: TableSpec, data: dict[str, Any], context: dict[str, Any]) -> str:
    """The remote id of an incoming row (the caller's, else the JSON's `id`)."""
    if not isinstance(data, dict):
        raise TypeError(f"{spec.name}: a row's data must be a JSON object, got {type(data).__name__}")
    key = context.get(spec.remote_key) or data.get("id")
    if not key:
        raise ValueError(f"{spec.name}: row without id")
    return key


def map_row(spec: TableSpec, data: dict[str, Any], context: dict[str, Any],
            managed: dict[str, Any] | None = None, rules: TextRules = textsafety.AS_IS) -> Mapped:
    """Graph JSON + caller context -> the values of one row, from the spec; text the backend
    cannot hold is degraded and listed on the row (`textsafety`)."""
    key = row_key(spec, data, context)
    data, text, degraded = textsafety.clean_data(data, rules)
    derived = schema.derive(spec, data)
    degraded = sorted(f"data:{path}" for path in degraded) + [f"column:{name}"
                                                        for name in textsafety.clean_columns(derived, rules)]
    if degraded:
        data = {**data, textsafety.DEGRADED_KEY: degraded}
        text = canonical_json(data)
    values: dict[str, Any] = {spec.remote_key: key, **derived}
    compared = []
    for name, value in {**context, **(managed or {})}.items():
        if name != spec.remote_key:
            spec.column(name)
            values[name] = value
            compared.append(name)
    return Mapped(key, values, data, text, digest(text), values.get("row_version") or "", tuple(compared))


@dataclass
class Incoming:
    """An item to upsert whose row is mapped on demand (`map`, once).

    Key and version are read up front: de-duplication and the key order of writes need only
    them. The rest of the mapping (schema columns, canonical JSON; ~20 us a row) can then run
    chunk by chunk inside the transaction, while the database writes the previous chunk
    (`Repository.map_ahead`, `_upsert_ordered`).
    """

    spec: TableSpec
    data: dict[str, Any]
    context: dict[str, Any]
    managed: dict[str, Any] | None
    key: str
    version: str  # what map_row's row_version will be (a derived column, never given by the caller)
    rules: TextRules = textsafety.AS_IS
    row: Mapped | None = None
    error: str | None = None  # why the row could not be mapped (it is then left out of the write)

    def map(self) -> Mapped:
        if self.row is None:
            self.row = map_row(self.spec, self.data, self.context, self.managed, self.rules)
        return self.row


def incoming(spec: TableSpec, data: dict[str, Any], context: dict[str, Any],
             managed: dict[str, Any] | None = None, rules: TextRules = textsafety.AS_IS) -> Incoming:
    key = row_key(spec, data, context)
    version = (spec.column("row_version").source(data) or "") if spec.versioned else ""
    return Incoming(spec, data, context, managed, key, version, rules)


def map_batch(batch: Iterable[Incoming]) -> list[Mapped]:
    """The batch's rows mapped; a row that cannot be mapped is left out (its `error` says why)
    instead of failing the write of every other row."""
    mapped = []
    for item in batch:
        if item.error is not None:
            continue
        try:
            mapped.append(item.map())
        except Exception as exc:
            item.error = f"{type(exc).__name__}: {exc}"[:500]
            log.error("%s row %.200r left out: it cannot be stored (%s)", item.spec.name, item.key, item.error)
    return mapped


def dedupe(rows: Iterable[Incoming]) -> list[Incoming]:
    """One row per key: the later one wins unless it is older (a page may repeat an item)."""
    kept: dict[str, Incoming] = {}
    for row in rows:
        previous = kept.get(row.key)
        if previous is None or not is_older(row.version, previous.version):
            kept[row.key] = row
    return list(kept.values())


class Repository(ABC):
    """Everything the product stores. Backends: postgres.py, sqlite.py, tables.py."""

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
    def _transaction(self, partition: str) -> AbstractContextManager[Any]:
        """A unit of work; commits on success, discards on exception where the backend can."""

    def _fetch_stored(self, tx: Any, spec: TableSpec, partition: str, keys: list[str]) -> dict[str, Stored]:
        """What is stored for these keys (used by the generic `_upsert_rows`)."""
        raise NotImplementedError(f"{self.backend} overrides _upsert_rows")

    def _write_rows(self, tx: Any, spec: TableSpec, partition: str,
                    writes: list[tuple[Mapped, Stored | None]], now: datetime) -> None:
        """Insert (stored None) or update rows decided by `should_write`; raise Conflict on a lost race."""
        raise NotImplementedError(f"{self.backend} overrides _upsert_rows")

    @abstractmethod
    def _select(self, spec: TableSpec, partition: str | None, filters: dict[str, Any], tx: Any = None,
                columns: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows whose columns equal the filters (a list/set/tuple value means IN), decoded to Python,
        in key order; at most `limit` of them."""

    @abstractmethod
    def _delete(self, tx: Any, spec: TableSpec, partition: str, filters: dict[str, Any]) -> list[str]:
        """Delete matching rows; return the last key column of each deleted row."""

    @abstractmethod
    def _put(self, tx: Any, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """Insert or fully replace rows of an operational (non-replicated) table."""

    def _append(self, tx: Any, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows whose keys are new (outbox entries under freshly allocated numbers).

        Same effect as `_put`; a backend with a faster bulk insert overrides it.
        """
        self._put(tx, spec, partition, rows)

    @abstractmethod
    def _count(self, spec: TableSpec, partition: str | None) -> int: ...

    @abstractmethod
    def _set_columns(self, tx: Any, spec: TableSpec, partition: str, updates: dict[str, dict[str, Any]]) -> None:
        """Set plain columns (not data, not the key) of existing rows, remote key -> values, as given:
        no version check, no `row_updated_at`, no outbox entry. Callers check the rows exist in `tx`."""

    @abstractmethod
    def _allocate(self, tx: Any, user_id: str, count: int) -> int:
        """Reserve `count` outbox sequence numbers for the user inside `tx`; returns the last one.

        Serializes the user's writers until `tx` ends (row lock, or an If-Match write that fails the
        transaction with Conflict), so one user's seq order is their commit order.
        """

    @abstractmethod
    def _delete_unseen(self, tx: Any, user_id: str, calendar_id: str, round_id: str, after: str | None,
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
    def _atomic(self, partition: str, unit: Any) -> Any:
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

    def _upsert_rows(self, tx: Any, spec: TableSpec, partition: str, rows: list[Mapped],
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
                kind = earlier[0] if earlier else ("updated" if found else "created")
                changes.append(ChangedRow(spec.name, row.key, kind, row.data))
            elif earlier is not None and earlier[1] == row.digest == found.digest:
                changes.append(ChangedRow(spec.name, row.key, earlier[0], row.data))  # an earlier attempt wrote it
        if writes:
            if attempted is not None:
                for row, found in writes:
                    attempted[(spec.name, row.key)] = (
                        attempted.get((spec.name, row.key), ("updated" if found else "created",))[0], row.digest)
            self._write_rows(tx, spec, partition, writes, now)
        return changes

    def _upsert(self, tx: Any, spec: TableSpec, partition: str, rows: Iterable[Incoming]) -> list[ChangedRow]:
        ordered = sorted(dedupe(rows), key=lambda r: r.key)  # one lock order for concurrent writers
        return self._upsert_ordered(tx, spec, partition, [list(c) for c in chunks(ordered, self.chunk_size)],
                                    utcnow())

    def _upsert_ordered(self, tx: Any, spec: TableSpec, partition: str, batches: list[list[Incoming]],
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

    def _record(self, tx: Any, user_id: str, changes: list[ChangedRow]) -> list[ChangedRow]:
        """Append `changes` to the user's outbox inside `tx` (the unit that made them); returns them."""
        if changes:
            last = self._allocate(tx, user_id, len(changes))
            now = utcnow()
            first = last - len(changes) + 1
            self._append(tx, OUTBOX, user_id, [outbox_row(user_id, first + i, c, now) for i, c in enumerate(changes)])
        return changes

    def _get(self, spec: TableSpec, partition: str, key: dict[str, Any], tx: Any = None) -> dict[str, Any] | None:
        rows = self._select(spec, partition, key, tx)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ users
    def upsert_user(self, user_id: str, data: dict[str, Any], *, encrypted_refresh_token: Any = KEEP) -> None:
        managed = {} if encrypted_refresh_token is KEEP else {"encrypted_refresh_token": encrypted_refresh_token}
        rows = self._incoming(USERS, [data], {"microsoft_user_id": user_id}, managed)
        # The profile (Graph's /me or /users/{id}) is published like calendars and events; the managed
        # columns set elsewhere (token, subscription) are not row changes consumers care about.
        self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, USERS, user_id, rows)))

    def get_user(self, user_id: str) -> UserRow | None:
        row = self._get(USERS, user_id, {"microsoft_user_id": user_id})
        return UserRow(**row) if row else None

    def list_users(self) -> list[UserRow]:
        return [UserRow(**r) for r in self._select(USERS, None, {})]

    def _set_user_columns(self, user_id: str, values: dict[str, Any]) -> None:
        def unit(tx: Any) -> None:
            current = self._get(USERS, user_id, {"microsoft_user_id": user_id}, tx)
            data = current["data"] if current else {}
            self._upsert(tx, USERS, user_id, [incoming(USERS, data, {"microsoft_user_id": user_id}, values)])

        self._atomic(user_id, unit)

    def set_refresh_token(self, user_id: str, encrypted: str | None) -> None:
        """Store the encrypted refresh token (creates the user row with empty data if missing)."""
        self._set_user_columns(user_id, {"encrypted_refresh_token": encrypted})

    def set_events_subscription(self, user_id: str, subscription_id: str | None,
                                expiration: datetime | None) -> None:
        self._set_user_columns(user_id, {"events_subscription_id": subscription_id,
                                         "events_subscription_expiration": _utc(expiration)})

    def delete_user(self, user_id: str) -> None:
        """The user's rows in all three tables, the account state, cursors and round markers.

        The outbox sequence stays: a user linked again continues it, so the feed's `sequence`
        (what consumers order a row's changes by) never goes backwards.
        """
        def unit(tx: Any) -> None:
            for spec in (OUTBOX, SEEN, CURSORS, EVENTS, CALENDARS, CALENDAR_SUBSCRIPTIONS, ACCOUNTS, USERS):
                self._delete(tx, spec, user_id, {"microsoft_user_id": user_id})

        self._atomic(user_id, unit)

    # ------------------------------------------------------------------ account state
    def get_account(self, user_id: str) -> AccountState | None:
        row = self._get(ACCOUNTS, user_id, {"microsoft_user_id": user_id})
        return AccountState(**row) if row else None

    def update_account(self, user_id: str, **changes: Any) -> AccountState:
        """Change some fields (creating the row if missing); status changes stamp status_changed_at."""
        allowed = set(ACCOUNTS.names()) - {"microsoft_user_id", "created_at", "updated_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_account: unknown fields {sorted(unknown)}")
        if changes.get("status") not in (None, *ACCOUNT_STATUSES):
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES}")
        if changes.get("mode") not in (None, *ACCOUNT_MODES):
            raise ValueError(f"mode must be one of {ACCOUNT_MODES}")

        def unit(tx: Any) -> AccountState:
            now = utcnow()
            row = self._get(ACCOUNTS, user_id, {"microsoft_user_id": user_id}, tx) or {
                "microsoft_user_id": user_id, "created_at": now}
            if "status" in changes and changes["status"] != row.get("status"):
                row["status_changed_at"] = now
            row.update({k: _utc(v) if isinstance(v, datetime) else v for k, v in changes.items()})
            row["updated_at"] = now
            self._put(tx, ACCOUNTS, user_id, [row])
            return AccountState(**row)

        return self._atomic(user_id, unit)

    def list_accounts(self) -> list[AccountState]:
        return [AccountState(**r) for r in self._select(ACCOUNTS, None, {})]

    # ------------------------------------------------------------------ calendars
    def upsert_calendars(self, user_id: str, calendars: list[dict[str, Any]]) -> list[ChangedRow]:
        rows = self._incoming(CALENDARS, calendars, {"microsoft_user_id": user_id})
        return self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, CALENDARS, user_id, rows)))

    def delete_calendars(self, user_id: str, calendar_ids: Iterable[str]) -> list[str]:
        """Delete calendars with their events, cursors and round markers; returns deleted calendar ids."""
        ids = sorted(set(calendar_ids))
        if not ids:
            return []

        def unit(tx: Any) -> list[str]:
            scope = {"microsoft_user_id": user_id, "microsoft_calendar_id": ids}
            for spec in (SEEN, CURSORS):
                self._delete(tx, spec, user_id, scope)
            events = self._delete(tx, EVENTS, user_id, scope)
            calendars = self._delete(tx, CALENDARS, user_id, scope)
            self._record(tx, user_id, [ChangedRow(EVENTS.name, i, "deleted", None) for i in events]
                         + [ChangedRow(CALENDARS.name, i, "deleted", None) for i in calendars])
            return calendars

        return self._atomic(user_id, unit)

    def list_calendars(self, user_id: str) -> list[CalendarRow]:
        return [CalendarRow(**r) for r in self._select(CALENDARS, user_id, {"microsoft_user_id": user_id})]

    # ------------------------------------------------------------------ calendar subscriptions
    def get_calendar_subscription(self, user_id: str, calendar_id: str) -> CalendarSubscription | None:
        row = self._get(CALENDAR_SUBSCRIPTIONS, user_id,
                        {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})
        return CalendarSubscription(**row) if row else None

    def list_calendar_subscriptions(self, user_id: str | None = None) -> list[CalendarSubscription]:
        """One user's calendar subscription rows, or every user's (renewal, status)."""
        filters = {"microsoft_user_id": user_id} if user_id is not None else {}
        return [CalendarSubscription(**r) for r in self._select(CALENDAR_SUBSCRIPTIONS, user_id, filters)]

    def update_calendar_subscription(self, user_id: str, calendar_id: str, **changes: Any) -> CalendarSubscription:
        """Change some fields of a calendar's subscription row (created when missing)."""
        allowed = set(CALENDAR_SUBSCRIPTIONS.names()) - {"microsoft_user_id", "microsoft_calendar_id", "updated_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_calendar_subscription: unknown fields {sorted(unknown)}")
        key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: Any) -> CalendarSubscription:
            row = self._get(CALENDAR_SUBSCRIPTIONS, user_id, key, tx) or dict(key)
            row.update({k: _utc(v) if isinstance(v, datetime) else v for k, v in changes.items()})
            row["updated_at"] = utcnow()
            self._put(tx, CALENDAR_SUBSCRIPTIONS, user_id, [row])
            return CalendarSubscription(**row)

        return self._atomic(user_id, unit)

    def delete_calendar_subscriptions(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        ids = sorted(set(calendar_ids))
        if ids:
            scope = {"microsoft_user_id": user_id, "microsoft_calendar_id": ids}
            self._atomic(user_id, lambda tx: self._delete(tx, CALENDAR_SUBSCRIPTIONS, user_id, scope))

    # ------------------------------------------------------------------ events
    def upsert_events(self, user_id: str, calendar_id: str, events: list[dict[str, Any]]) -> list[ChangedRow]:
        rows = self._event_rows(user_id, calendar_id, events)
        return self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, EVENTS, user_id, rows)))

    def delete_events(self, user_id: str, event_ids: Iterable[str]) -> list[str]:
        ids = sorted(set(event_ids))
        if not ids:
            return []
        scope = {"microsoft_user_id": user_id, "microsoft_event_id": ids}

        def unit(tx: Any) -> list[str]:
            deleted = self._delete(tx, EVENTS, user_id, scope)
            self._record(tx, user_id, [ChangedRow(EVENTS.name, i, "deleted", None) for i in deleted])
            return deleted

        return self._atomic(user_id, unit)

    def list_events(self, user_id: str, calendar_id: str | None = None) -> list[EventRow]:
        filters = {"microsoft_user_id": user_id}
        if calendar_id is not None:
            filters["microsoft_calendar_id"] = calendar_id
        return [EventRow(**r) for r in self._select(EVENTS, user_id, filters)]

    def event_ids(self, user_id: str, calendar_id: str) -> set[str]:
        rows = self._select(EVENTS, user_id, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id},
                            columns=["microsoft_event_id"])
        return {r["microsoft_event_id"] for r in rows}

    def _event_rows(self, user_id: str, calendar_id: str, events: Iterable[dict[str, Any]]) -> list[Incoming]:
        return self._incoming(EVENTS, events, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})

    # ------------------------------------------------------------------ sync cursors and pages
    def get_cursor(self, user_id: str, calendar_id: str) -> SyncCursor | None:
        row = self._get(CURSORS, user_id, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})
        return SyncCursor(**row) if row else None

    def save_page(self, user_id: str, calendar_id: str, *, events: list[dict[str, Any]], removed_ids: list[str],
                  next_link: str | None, delta_link: str | None, window: tuple[datetime, datetime],
                  full_round: bool = False) -> PageResult:
        """Upsert a page, delete its removed ids (in this calendar), record the changes in the outbox
        and store the cursor, in one unit.

        While a round goes on the cursor holds next_link (and keeps the previous delta_link); the
        delta_link replaces both when the round ends. In a full round the page's ids are remembered
        for `finish_full_round`. Items carrying `@removed` are treated as removed ids.
        """
        removed = set(removed_ids) | {e["id"] for e in events if "@removed" in e and e.get("id")}
        rows = self._event_rows(user_id, calendar_id, [e for e in events if "@removed" not in e])
        cursor_key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: Any) -> PageResult:
            now = utcnow()
            cursor = self._get(CURSORS, user_id, cursor_key, tx) or {}
            round_id = None
            if full_round:
                round_id = cursor.get("round_id") if cursor.get("full_round") else None
                round_id = round_id or uuid.uuid4().hex
            changes = self._upsert(tx, EVENTS, user_id, rows)
            gone = sorted(removed - {r.key for r in rows})
            if gone:
                deleted = self._delete(tx, EVENTS, user_id, {**cursor_key, "microsoft_event_id": gone})
                changes += [ChangedRow(EVENTS.name, i, "deleted", None) for i in deleted]
            if full_round and rows:
                self._put(tx, SEEN, user_id, [{**cursor_key, "round_id": round_id, "microsoft_event_id": r.key}
                                              for r in dedupe(rows)])
            self._record(tx, user_id, changes)  # before the cursor (Table Storage commits in this order)
            kept_delta = delta_link if delta_link else cursor.get("delta_link")
            self._put(tx, CURSORS, user_id, [{
                **cursor_key, "window_start": _utc(window[0]), "window_end": _utc(window[1]),
                "next_link": next_link, "delta_link": kept_delta,
                "full_round": bool(full_round or cursor.get("full_round")),
                "round_id": round_id or cursor.get("round_id"), "updated_at": now}])
            if delta_link:
                self._mirror_delta_url(tx, user_id, calendar_id, kept_delta)
            return PageResult(changes, round_id)

        result = self._atomic(user_id, unit)
        skipped = sorted({r.key for r in rows if r.error is not None})
        return dataclasses.replace(result, skipped=skipped) if skipped else result

    def finish_full_round(self, user_id: str, calendar_id: str) -> list[str]:
        """Delete the calendar's local rows no page of the round wrote; end the round. Returns their ids.

        In units of `reconcile_chunk` rows, each deleted with its outbox entries; the unit that finds
        fewer also ends the round in its cursor, so a crash in between leaves a round that the next
        sync finishes (rows deleted already are not found again). Memory stays flat however large
        the calendar: the database picks the unseen rows (`_delete_unseen`); only the deleted ids
        (the rows that vanished from Graph) are returned. The round's markers are dropped once the
        round has ended (`_purge_seen`); markers a crash leaves there belong to no live round (a new
        round has a new id) and go with the next round's.
        """
        cursor_key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}
        deleted: list[str] = []
        after: str | None = None
        ended = False

        def unit(tx: Any) -> tuple[list[str], str | None, bool]:
            cursor = self._get(CURSORS, user_id, cursor_key, tx)
            if not cursor or not cursor.get("round_id"):
                return [], None, False
            gone, resume = self._delete_unseen(tx, user_id, calendar_id, cursor["round_id"], after,
                                               self.reconcile_chunk)
            self._record(tx, user_id, [ChangedRow(EVENTS.name, i, "deleted", None) for i in gone])
            if len(gone) >= self.reconcile_chunk:
                return gone, resume, False
            self._put(tx, CURSORS, user_id, [{**cursor, "full_round": False, "round_id": None,
                                              "updated_at": utcnow()}])
            return gone, None, True

        while True:
            gone, after, ended = self._atomic(user_id, unit)
            deleted += gone
            if ended or not gone:
                break
        if ended:
            self._purge_seen(user_id, calendar_id)
        return deleted

    def clear_cursor(self, user_id: str, calendar_id: str) -> None:
        """Forget the calendar's cursor (its next round is full); its round markers go after it."""
        scope = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: Any) -> None:
            self._delete(tx, CURSORS, user_id, scope)
            self._mirror_delta_url(tx, user_id, calendar_id, None)

        self._atomic(user_id, unit)
        self._purge_seen(user_id, calendar_id)  # after the cursor: a crash in between leaves no round to finish

    def _mirror_delta_url(self, tx: Any, user_id: str, calendar_id: str, delta_link: str | None) -> None:
        """Copy the cursor's deltaLink to the calendar row's `delta_url` (WebhookDB's published column).

        The cursor stays the source of truth; the column only mirrors it, so writing it neither
        counts as a change of the calendar (no row_updated_at, no outbox entry) nor is read back.
        """
        rows = self._select(CALENDARS, user_id, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id},
                            tx, columns=["microsoft_calendar_id", "delta_url"])
        if rows and rows[0]["delta_url"] != delta_link:
            self._set_columns(tx, CALENDARS, user_id, {calendar_id: {"delta_url": delta_link}})

    def keep_created_at(self, table: str, user_id: str, created: dict[str, datetime]) -> int:
        """Give the user's existing rows of `table` these `row_created_at` values (remote id -> instant).

        For rows brought over from another store (`import-webhookdb`), so they keep their age.
        Only `row_created_at` changes; rows already right and unknown ids are left alone, so a
        second call changes nothing. Returns how many rows changed.
        """
        spec = schema.BY_NAME[table]
        if not spec.replicated:
            raise ValueError(f"keep_created_at sets replicated tables, not {table}")
        changed = 0
        for chunk in chunks(sorted(created), self.chunk_size):
            filters: dict[str, Any] = {spec.partition: user_id}
            if spec.remote_key != spec.partition:
                filters[spec.remote_key] = list(chunk)

            def unit(tx: Any, filters: dict[str, Any] = filters, chunk: Sequence[str] = chunk) -> int:
                wanted = set(chunk)
                rows = self._select(spec, user_id, filters, tx, columns=[spec.remote_key, "row_created_at"])
                updates = {r[spec.remote_key]: {"row_created_at": _utc(created[r[spec.remote_key]])} for r in rows
                           if r[spec.remote_key] in wanted and r["row_created_at"] != _utc(created[r[spec.remote_key]])}
                if updates:
                    self._set_columns(tx, spec, user_id, updates)
                return len(updates)

            changed += self._atomic(user_id, unit)
        return changed

    # ------------------------------------------------------------------ narrow reads
    def select(self, table: str, user_id: str, columns: Sequence[str], **filters: Any) -> list[dict[str, Any]]:
        """Some columns of the user's rows in a replicated table, filtered by equality (a list means IN).

        For reads that need a few fields of many rows (series masters, the outbox publisher)
        without decoding every row's JSON unless `data` is asked for.
        """
        spec = schema.BY_NAME[table]
        if not spec.replicated:
            raise ValueError(f"select reads the replicated tables, not {table}")
        unknown = (set(columns) | set(filters)) - set(spec.names())
        if unknown:
            raise ValueError(f"{table} has no columns {sorted(unknown)}")
        if any(isinstance(v, list | set | tuple) and not v for v in filters.values()):
            return []
        return self._select(spec, user_id, {spec.partition: user_id, **filters}, columns=list(columns))

    def distinct(self, table: str, user_id: str, column: str, **filters: Any) -> set[Any]:
        """The distinct non-null values of one column of the user's rows, filtered like `select`.

        For questions about many rows whose answer is small (the series a calendar's instances
        reference): memory follows the answer, not the number of rows.
        """
        spec = schema.BY_NAME[table]
        if not spec.replicated:
            raise ValueError(f"distinct reads the replicated tables, not {table}")
        unknown = ({column} | set(filters)) - set(spec.names())
        if unknown:
            raise ValueError(f"{table} has no columns {sorted(unknown)}")
        if any(isinstance(v, list | set | tuple) and not v for v in filters.values()):
            return set()
        return self._distinct(spec, user_id, column, {spec.partition: user_id, **filters})

    # ------------------------------------------------------------------ counters
    def increment(self, name: str, by: int = 1) -> int:
        """Add `by` to the counter `name` atomically across instances; returns the new value.

        Counters are rows of the outbox-sequence table, so they reuse its atomic increment (row lock
        on SQL, If-Match on Tables). Their names contain ':' ('webhook:crm:delivered'), which a
        microsoft_user_id never does.
        """
        if ":" not in name:
            raise ValueError("counter names contain ':' so they never collide with a user's sequence")
        for attempt in range(COUNTER_ROUNDS):  # a hot counter on Tables loses If-Match races often
            try:
                return self._atomic(name, lambda tx: self._allocate(tx, name, by))
            except Conflict:
                if attempt == COUNTER_ROUNDS - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise AssertionError("unreachable")

    def counter(self, name: str) -> int:
        row = self._get(OUTBOX_SEQ, name, {"microsoft_user_id": name})
        return int(row["last_seq"]) if row else 0

    # ------------------------------------------------------------------ outbox
    def pending_changes(self, user_id: str, limit: int = 500) -> list[OutboxEntry]:
        """The user's changes not yet acknowledged, oldest first (at most `limit`)."""
        rows = self._select(OUTBOX, user_id, {"microsoft_user_id": user_id}, limit=limit)
        return [OutboxEntry(r["seq"], r["row_table"], r["remote_id"], r["kind"], r["version"] or "", r["created_at"])
                for r in rows]

    def ack_changes(self, user_id: str, entry_ids: Iterable[int]) -> None:
        """Forget published entries (their `seq`); unknown or already acknowledged ones are ignored."""
        seqs = sorted(set(entry_ids))
        for chunk in chunks(seqs, self.chunk_size):
            scope = {"microsoft_user_id": user_id, "seq": list(chunk)}
            self._atomic(user_id, lambda tx, scope=scope: self._delete(tx, OUTBOX, user_id, scope))

    # ------------------------------------------------------------------ sign-in states used
    def claim_flow(self, key: str, expires_at: datetime) -> bool:
        """Record that the sign-in state `key` was used: True the first time, False ever after (until
        `expires_at`, when the state itself has expired). Atomic across instances; expired markers
        of earlier sign-ins are swept here."""
        if not key or len(key) > 128:
            raise ValueError("a sign-in state key has 1-128 characters")
        claimed = self._claim_flow(key, int(_utc(expires_at).timestamp() * 1000))
        with suppress(Exception):  # housekeeping never fails a sign-in; the next claim sweeps again
            self._sweep_flows(int(time.time() * 1000))
        return claimed

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        return {spec.name: self._count(spec, user_id) for spec in (USERS, CALENDARS, EVENTS, ACCOUNTS, CURSORS)}

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)

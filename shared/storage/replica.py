"""The replicated calendar and event rows outside a sync round: writes, deletes and narrow reads."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from shared.storage import schema
from shared.storage.engine import RepositoryCore, TxT
from shared.storage.rows import (
    chunks,
    utc,
)
from shared.storage.schema import (
    ACCOUNTS,
    CALENDARS,
    CURSORS,
    EVENTS,
    SEEN,
    USERS,
)
from shared.storage.types import (
    CalendarRow,
    ChangedRow,
    EventRow,
)

log = logging.getLogger("shared.storage")


class ReplicaRows(RepositoryCore[TxT]):
    """Calendars and events as the actions and the importer change them, and reads of the replica."""

    # ------------------------------------------------------------------ calendars
    def upsert_calendars(self, user_id: str, calendars: list[dict[str, Any]]) -> list[ChangedRow]:
        rows = self._incoming(CALENDARS, calendars, {"microsoft_user_id": user_id})
        return self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, CALENDARS, user_id, rows)))

    def delete_calendars(self, user_id: str, calendar_ids: Iterable[str]) -> list[str]:
        """Delete calendars with their events, cursors and round markers; returns deleted calendar ids."""
        ids = sorted(set(calendar_ids))
        if not ids:
            return []

        def unit(tx: TxT) -> list[str]:
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

    # ------------------------------------------------------------------ events
    def upsert_events(self, user_id: str, calendar_id: str, events: list[dict[str, Any]]) -> list[ChangedRow]:
        rows = self._event_rows(user_id, calendar_id, events)
        return self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, EVENTS, user_id, rows)))

    def delete_events(self, user_id: str, event_ids: Iterable[str]) -> list[str]:
        ids = sorted(set(event_ids))
        if not ids:
            return []
        scope = {"microsoft_user_id": user_id, "microsoft_event_id": ids}

        def unit(tx: TxT) -> list[str]:
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

            def unit(tx: TxT, filters: dict[str, Any] = filters, chunk: Sequence[str] = chunk) -> int:
                wanted = set(chunk)
                rows = self._select(spec, user_id, filters, tx, columns=[spec.remote_key, "row_created_at"])
                updates = {r[spec.remote_key]: {"row_created_at": utc(created[r[spec.remote_key]])} for r in rows
                           if r[spec.remote_key] in wanted and r["row_created_at"] != utc(created[r[spec.remote_key]])}
                if updates:
                    self._set_columns(tx, spec, user_id, updates)
                return len(updates)

            changed += self._atomic(user_id, unit)
        return changed

    # ------------------------------------------------------------------ narrow reads
    def select(self, table: str, user_id: str, columns: Sequence[str], **filters: object) -> list[dict[str, Any]]:
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

    def distinct(self, table: str, user_id: str, column: str, **filters: object) -> set[Any]:
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

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        return {spec.name: self._count(spec, user_id) for spec in (USERS, CALENDARS, EVENTS, ACCOUNTS, CURSORS)}

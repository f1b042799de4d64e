"""What the repository returns. Row classes are generated from the table specs
in `schema.py`, so a column is declared in exactly one place."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any, Literal

from shared.storage import schema

_PY = {schema.TEXT: str, schema.TIMESTAMP: datetime, schema.BOOL: bool, schema.INT: int, schema.JSON: dict}


class _Keep(enum.Enum):
    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep.KEEP
"""Sentinel: leave the stored value as it is."""


def row_type(spec: schema.TableSpec, name: str, doc: str) -> type:
    """A frozen dataclass with one field per column of `spec` (None by default)."""
    fields = [(c.name, _PY[c.type] | None, dataclasses.field(default=None)) for c in spec.columns]
    cls = dataclasses.make_dataclass(name, fields, frozen=True, namespace={"__doc__": doc, "spec": spec})
    cls.__module__ = __name__
    return cls


UserRow = row_type(schema.USERS, "UserRow", "A row of microsoft_calendar_user_v1.")
CalendarRow = row_type(schema.CALENDARS, "CalendarRow", "A row of microsoft_calendar_v1.")
EventRow = row_type(schema.EVENTS, "EventRow", "A row of microsoft_calendar_event_v1 (`updated` is lastModified).")
AccountState = row_type(schema.ACCOUNTS, "AccountState", "Operational state of one linked account.")
SyncCursor = row_type(schema.CURSORS, "SyncCursor", "Delta/next link of one (user, calendar) and its window.")
CalendarSubscription = row_type(schema.CALENDAR_SUBSCRIPTIONS, "CalendarSubscription",
                                "The change-notification subscription of one (user, calendar).")

ROW_TYPES: dict[str, type] = {
    schema.USERS.name: UserRow, schema.CALENDARS.name: CalendarRow, schema.EVENTS.name: EventRow,
    schema.ACCOUNTS.name: AccountState, schema.CURSORS.name: SyncCursor,
    schema.CALENDAR_SUBSCRIPTIONS.name: CalendarSubscription,
}


@dataclasses.dataclass(frozen=True)
class ChangedRow:
    """One row that really changed; replication publishes these to the outbound queue."""

    table: str
    remote_id: str
    kind: Literal["created", "updated", "deleted"]
    data: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """A changed row waiting in the outbox for the outbound queue (`pending_changes`, `ack_changes`).

    `seq` orders one user's entries and is what `ack_changes` takes. `version` is the row's
    changeKey / lastModifiedDateTime at the change. `data` is the row's JSON text as that change
    wrote it (None for a deletion, a row too large to keep, or an entry older than the column: the
    publisher reads those rows back with `Repository.select`).
    """

    seq: int
    table: str
    remote_id: str
    kind: Literal["created", "updated", "deleted"]
    version: str
    created_at: datetime | None = None
    data: str | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class PageResult:
    """What one `save_page` did."""

    changes: list[ChangedRow]
    round_id: str | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)  # ids of rows that could not be stored (logged)

    @property
    def deleted_ids(self) -> list[str]:
        return [c.remote_id for c in self.changes if c.kind == "deleted"]

"""What the repository returns.

Row classes mirror the table specs in `schema.py` field for field, written out so a type checker
and a reader see each column's type; tests/storage/test_rows.py checks they match the specs.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any, ClassVar, Literal, TypedDict

from shared.storage import schema


class Keep(enum.Enum):
    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep.KEEP
"""Sentinel: leave the stored value as it is."""


@dataclasses.dataclass(frozen=True)
class UserRow:
    """A row of microsoft_calendar_user_v1."""

    spec: ClassVar[schema.TableSpec] = schema.USERS

    microsoft_user_id: str | None = None
    row_created_at: datetime | None = None
    row_updated_at: datetime | None = None
    encrypted_refresh_token: str | None = None
    events_subscription_id: str | None = None
    events_subscription_expiration: datetime | None = None
    data: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class CalendarRow:
    """A row of microsoft_calendar_v1."""

    spec: ClassVar[schema.TableSpec] = schema.CALENDARS

    microsoft_calendar_id: str | None = None
    row_created_at: datetime | None = None
    row_updated_at: datetime | None = None
    microsoft_user_id: str | None = None
    is_default_calendar: bool | None = None
    name: str | None = None
    delta_url: str | None = None
    data: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class EventRow:
    """A row of microsoft_calendar_event_v1 (`updated` is lastModified)."""

    spec: ClassVar[schema.TableSpec] = schema.EVENTS

    microsoft_event_id: str | None = None
    microsoft_calendar_id: str | None = None
    microsoft_user_id: str | None = None
    row_created_at: datetime | None = None
    row_updated_at: datetime | None = None
    created: datetime | None = None
    updated: datetime | None = None
    is_all_day: bool | None = None
    start_at: datetime | None = None
    start_timezone: str | None = None
    original_start_timezone: str | None = None
    end_at: datetime | None = None
    end_timezone: str | None = None
    original_end_timezone: str | None = None
    is_cancelled: bool | None = None
    type: str | None = None
    series_master_id: str | None = None
    ical_uid: str | None = None
    subject: str | None = None
    change_key: str | None = None
    row_version: str | None = None
    data: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class AccountState:
    """Operational state of one linked account."""

    spec: ClassVar[schema.TableSpec] = schema.ACCOUNTS

    microsoft_user_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    graph_user_id: str | None = None
    mode: str | None = None
    subscription_client_state_id: str | None = None
    subscription_resource: str | None = None
    subscription_lifetime_minutes: int | None = None
    last_sync_at: datetime | None = None
    last_sync_started_at: datetime | None = None
    last_sync_error: str | None = None
    last_error_at: datetime | None = None
    quota_error: str | None = None
    extra: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class SyncCursor:
    """Delta/next link of one (user, calendar) and its window."""

    spec: ClassVar[schema.TableSpec] = schema.CURSORS

    microsoft_user_id: str | None = None
    microsoft_calendar_id: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    next_link: str | None = None
    delta_link: str | None = None
    full_round: bool | None = None
    round_id: str | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class CalendarSubscription:
    """The change-notification subscription of one (user, calendar)."""

    spec: ClassVar[schema.TableSpec] = schema.CALENDAR_SUBSCRIPTIONS

    microsoft_user_id: str | None = None
    microsoft_calendar_id: str | None = None
    subscription_id: str | None = None
    expiration: datetime | None = None
    resource: str | None = None
    state: str | None = None
    is_default: bool | None = None
    client_state_id: str | None = None
    last_error: str | None = None
    sync_started_at: datetime | None = None
    synced_at: datetime | None = None
    updated_at: datetime | None = None




class AccountChanges(TypedDict, total=False):
    """The fields `Repository.update_account` may change (all optional)."""

    status: str | None
    status_reason: str | None
    status_changed_at: datetime | None
    graph_user_id: str | None
    mode: str | None
    subscription_client_state_id: str | None
    subscription_resource: str | None
    subscription_lifetime_minutes: int | None
    last_sync_at: datetime | None
    last_sync_started_at: datetime | None
    last_sync_error: str | None
    last_error_at: datetime | None
    quota_error: str | None
    extra: dict[str, Any] | None


class SubscriptionChanges(TypedDict, total=False):
    """The fields `Repository.update_calendar_subscription` may change (all optional)."""

    subscription_id: str | None
    expiration: datetime | None
    resource: str | None
    state: str | None
    is_default: bool | None
    client_state_id: str | None
    last_error: str | None
    sync_started_at: datetime | None
    synced_at: datetime | None


@dataclasses.dataclass(frozen=True)
class ChangedRow:
    """One row that really changed; replication publishes these to the outbound queue."""

    table: str
    remote_id: str
    kind: Literal["created", "updated", "deleted"]
    data: dict[str, Any] | None
    # The data's canonical JSON as the write computed it (rows.Mapped.text), so the outbox keeps it
    # without encoding the row a second time; None where the writer had no text at hand.
    text: str | None = dataclasses.field(default=None, compare=False, repr=False)


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

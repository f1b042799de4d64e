"""Every stored table, declared once.

A `TableSpec` lists its columns in order with their type, role and (for
columns read from Graph JSON) the converter. That single declaration drives
the PostgreSQL/SQLite DDL (`fixture.py`), the row mapping (`map_row`), the row
dataclasses (`types.py`) and the Table Storage entity mapping (`tables.py`).

Roles: `key` (remote id), `meta` (row_created_at/row_updated_at, set by the
repository), `derived` (read from `data`), `context` (given by the caller:
owner user, parent calendar), `managed` (set by dedicated methods: refresh
token, subscription), `data` (the raw JSON). Operational tables (accounts,
cursors, round markers, leases, the outbox, used sign-in states, calendar subscriptions,
schema_version)
use `state` columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from shared.jsontypes import JsonValue
from shared.storage import timeconv

TEXT, TIMESTAMP, BOOL, INT, JSON = "text", "timestamp", "bool", "int", "json"
KEY, META, DERIVED, CONTEXT, MANAGED, DATA, STATE = "key", "meta", "derived", "context", "managed", "data", "state"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    role: str = MANAGED
    indexed: bool = False
    source: Callable[[dict[str, Any]], Any] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str          # SQL table name (WebhookDB's for the replicated tables)
    short: str         # Table Storage suffix after TABLE_PREFIX (alphanumeric)
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    replicated: bool   # WebhookDB shape: pk bigserial, unique remote id, data jsonb
    partition: str = "microsoft_user_id"

    @cached_property
    def _by_name(self) -> dict[str, Column]:
        return {col.name: col for col in self.columns}

    def column(self, name: str) -> Column:
        """The column called `name` (on the bulk-write path: a dict lookup, not a scan)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no column {name}") from None

    def names(self, *roles: str) -> list[str]:
        return [c.name for c in self.columns if not roles or c.role in roles]

    @property
    def remote_key(self) -> str:
        return self.key[-1]

    @property
    def indexed(self) -> list[str]:
        return [c.name for c in self.columns if c.indexed]

    @cached_property
    def versioned(self) -> bool:
        """Whether rows carry a `row_version` (asked for every row on the bulk-write path: computed once)."""
        return "row_version" in self._by_name

    @cached_property
    def derived(self) -> tuple[Column, ...]:
        """The columns read from the JSON payload (`derive`), in column order."""
        return tuple(c for c in self.columns if c.role == DERIVED and c.source)


def replicated(name: str, short: str, key: str, *columns: Column, before_timestamps: tuple[Column, ...] = ()
               ) -> TableSpec:
    """A WebhookDB-shaped table: remote key, [before_timestamps], row timestamps, own columns, then data.

    The order is WebhookDB's (its event table has the owner ids between the key and the row
    timestamps), so positional `INSERT ... SELECT` and `COPY` from WebhookDB's tables line up.
    """
    return TableSpec(
        name, short,
        (Column(key, TEXT, KEY), *before_timestamps, Column("row_created_at", TIMESTAMP, META, indexed=True),
         Column("row_updated_at", TIMESTAMP, META, indexed=True), *columns, Column("data", JSON, DATA)),
        key=(key,), replicated=True,
        partition=key if key == "microsoft_user_id" else "microsoft_user_id",
    )


def state(name: str, short: str, key: tuple[str, ...], *columns: Column) -> TableSpec:
    """An operational table of this app (not WebhookDB's): composite key, plain columns."""
    return TableSpec(name, short, tuple(Column(k, TEXT, KEY) for k in key) + columns, key=key, replicated=False)


def _get(*path: str) -> Callable[[dict[str, Any]], Any]:
    def read(data: dict[str, Any]) -> Any:
        value: JsonValue = data
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return read


def _instant(field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: timeconv.to_instant(d.get(field), all_day=bool(d.get("isAllDay")))


def event_version(data: dict[str, Any]) -> str:
    """Sortable version: lastModifiedDateTime (7 digits, UTC) then changeKey; '' when unknown."""
    modified = timeconv.sortable(data.get("lastModifiedDateTime"))
    return f"{modified}|{data.get('changeKey') or ''}" if modified else ""


def _s(name: str, type_: str = TEXT) -> Column:
    return Column(name, type_, STATE)


USERS = replicated(
    "microsoft_calendar_user_v1", "users", "microsoft_user_id",
    Column("encrypted_refresh_token", TEXT),
    Column("events_subscription_id", TEXT, indexed=True),
    Column("events_subscription_expiration", TIMESTAMP, indexed=True),
)

CALENDARS = replicated(
    "microsoft_calendar_v1", "calendars", "microsoft_calendar_id",
    Column("microsoft_user_id", TEXT, CONTEXT, indexed=True),
    Column("is_default_calendar", BOOL, DERIVED, source=_get("isDefaultCalendar")),
    Column("name", TEXT, DERIVED, source=_get("name")),
    Column("delta_url", TEXT),
)

# WebhookDB's 16 columns in WebhookDB's order (pk, microsoft_event_id ... original_end_timezone), then the
# columns this product adds (is_cancelled ... row_version), then data.
EVENTS = replicated(
    "microsoft_calendar_event_v1", "events", "microsoft_event_id",
    Column("created", TIMESTAMP, DERIVED, source=lambda d: timeconv.parse_utc(d.get("createdDateTime"))),
    Column("updated", TIMESTAMP, DERIVED, source=lambda d: timeconv.parse_utc(d.get("lastModifiedDateTime"))),
    Column("is_all_day", BOOL, DERIVED, source=_get("isAllDay")),
    Column("start_at", TIMESTAMP, DERIVED, indexed=True, source=_instant("start")),
    Column("start_timezone", TEXT, DERIVED, source=_get("start", "timeZone")),
    Column("original_start_timezone", TEXT, DERIVED, source=_get("originalStartTimeZone")),
    Column("end_at", TIMESTAMP, DERIVED, indexed=True, source=_instant("end")),
    Column("end_timezone", TEXT, DERIVED, source=_get("end", "timeZone")),
    Column("original_end_timezone", TEXT, DERIVED, source=_get("originalEndTimeZone")),
    Column("is_cancelled", BOOL, DERIVED, source=_get("isCancelled")),
    Column("type", TEXT, DERIVED, source=_get("type")),
    Column("series_master_id", TEXT, DERIVED, indexed=True, source=_get("seriesMasterId")),
    Column("ical_uid", TEXT, DERIVED, indexed=True, source=_get("iCalUId")),
    Column("subject", TEXT, DERIVED, source=_get("subject")),
    Column("change_key", TEXT, DERIVED, source=_get("changeKey")),
    Column("row_version", TEXT, DERIVED, source=event_version),
    before_timestamps=(Column("microsoft_calendar_id", TEXT, CONTEXT, indexed=True),
                       Column("microsoft_user_id", TEXT, CONTEXT, indexed=True)),
)

ACCOUNTS = state(
    "microsoft_calendar_account_v1", "accounts", ("microsoft_user_id",),
    _s("status"), _s("status_reason"), _s("status_changed_at", TIMESTAMP), _s("graph_user_id"), _s("mode"),
    _s("subscription_client_state_id"), _s("subscription_resource"), _s("subscription_lifetime_minutes", INT),
    _s("last_sync_at", TIMESTAMP), _s("last_sync_started_at", TIMESTAMP), _s("last_sync_error"),
    _s("last_error_at", TIMESTAMP), _s("quota_error"), _s("extra", JSON),
    _s("created_at", TIMESTAMP), _s("updated_at", TIMESTAMP),
)

CURSORS = state(
    "microsoft_calendar_sync_cursor_v1", "cursors", ("microsoft_user_id", "microsoft_calendar_id"),
    _s("window_start", TIMESTAMP), _s("window_end", TIMESTAMP), _s("next_link"), _s("delta_link"),
    _s("full_round", BOOL), _s("round_id"), _s("updated_at", TIMESTAMP),
)

# Ids written during a reconciling round, kept until finish_full_round (crash-safe).
SEEN = state(
    "microsoft_calendar_round_seen_v1", "seen",
    ("microsoft_user_id", "microsoft_calendar_id", "round_id", "microsoft_event_id"),
)

LEASES = state(
    # One sync per user across instances: a row per held lease, taken by compare-and-set.
    "microsoft_calendar_lease_v1", "leases", ("name",),
    _s("owner"), _s("expires_at_ms", INT),
)

# The transactional outbox: each changed calendar/event row, written in the transaction that changed
# it, deleted once published to the outbound queue. `seq` orders one user's entries. An entry names
# the change (table, id, kind, version) and carries the row's JSON as written (`row_data`, migration 5),
# so the publisher never reads rows back; NULL for a deletion, a row too large to keep here, or an
# entry written before migration 5 (those rows are read back when published).
OUTBOX_V3_COLUMNS = (Column("microsoft_user_id", TEXT, KEY), Column("seq", INT, KEY), _s("row_table"),
                     _s("remote_id"), _s("kind"), _s("version"), _s("created_at", TIMESTAMP))
OUTBOX = TableSpec(
    "microsoft_calendar_outbox_v1", "outbox", (*OUTBOX_V3_COLUMNS, _s("row_data")),
    key=("microsoft_user_id", "seq"), replicated=False,
)

# The last outbox `seq` handed out per user: allocating takes this row's lock (SQL) or ETag (Tables),
# which orders one user's concurrent writers.
OUTBOX_SEQ = state("microsoft_calendar_outbox_seq_v1", "outboxseq", ("microsoft_user_id",), _s("last_seq", INT))

# Sign-in states already used, keyed by sha256(state), until the state itself expires (the flow travels
# sealed inside the state, see shared/auth/flow_store.py; the `flow` column holds "used"). Claimed once,
# atomically. The table name predates this; it once held the flows themselves.
OAUTH_FLOWS = state(
    "microsoft_calendar_oauth_flow_v1", "oauthflows", ("flow_key",),
    _s("flow"), Column("expires_at_ms", INT, STATE, indexed=True),
)

# One row per replicated calendar: its change-notification subscription (Graph notifies
# `calendars/{id}/events` for that calendar only) and when it was last synced on its own, which
# coalesces the calendar's notifications. `state`: live | missing | capped (over the per-mailbox
# cap: the safety-net sync covers it) | failed. The user row's events_subscription_* mirror the
# default calendar's row.
CALENDAR_SUBSCRIPTIONS = state(
    "microsoft_calendar_subscription_v1", "calsubs", ("microsoft_user_id", "microsoft_calendar_id"),
    Column("subscription_id", TEXT, STATE, indexed=True), _s("expiration", TIMESTAMP), _s("resource"),
    _s("state"), _s("is_default", BOOL), _s("client_state_id"), _s("last_error"),
    _s("sync_started_at", TIMESTAMP), _s("synced_at", TIMESTAMP), _s("updated_at", TIMESTAMP),
)

REPLICATED: tuple[TableSpec, ...] = (USERS, CALENDARS, EVENTS)
ALL: tuple[TableSpec, ...] = (USERS, CALENDARS, EVENTS, ACCOUNTS, CURSORS, SEEN, LEASES, OUTBOX, OUTBOX_SEQ,
                              OAUTH_FLOWS, CALENDAR_SUBSCRIPTIONS)
BY_NAME = {spec.name: spec for spec in ALL}


def derive(spec: TableSpec, data: dict[str, Any]) -> dict[str, Any]:
    """Values of the columns read from the JSON payload."""
    return {c.name: c.source(data) for c in spec.derived if c.source}


def derive_one(spec: TableSpec, name: str, data: dict[str, Any]) -> Any:
    """The value of one derived column read from the JSON payload (None when it has no source)."""
    column = spec.column(name)
    return column.source(data) if column.source else None

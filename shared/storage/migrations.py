"""Versioned schema changes for the SQL backends.

Each migration has a number and is applied once, in order, inside a
transaction; `schema_version` records what ran. Later changes append a
migration (e.g. `ALTER TABLE ... ADD COLUMN`) rather than editing the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from shared.storage import schema
from shared.storage.fixture import SQL_TYPES, real_table_ddl


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[str], list[str]]  # dialect -> SQL statements


def _tables(*specs: schema.TableSpec) -> Callable[[str], list[str]]:
    return lambda dialect: [stmt for spec in specs for stmt in real_table_ddl(spec, dialect)]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "replicated tables (WebhookDB shape) and operational state",
              _tables(schema.USERS, schema.CALENDARS, schema.EVENTS, schema.ACCOUNTS, schema.CURSORS, schema.SEEN)),
    Migration(2, "leases: one sync per user across instances", _tables(schema.LEASES)),
    Migration(3, "outbox for outbound change events; sign-ins in flight",
              _tables(replace(schema.OUTBOX, columns=schema.OUTBOX_V3_COLUMNS), schema.OUTBOX_SEQ,
                      schema.OAUTH_FLOWS)),
    Migration(4, "one change-notification subscription per calendar", _tables(schema.CALENDAR_SUBSCRIPTIONS)),
    Migration(5, "outbox entries carry the row's data as written (the publisher reads no rows back)",
              lambda dialect: [f"ALTER TABLE {schema.OUTBOX.name} ADD COLUMN row_data "
                               f"{SQL_TYPES[dialect][schema.TEXT]}"]),
)

# Compare-and-set shared by the SQL backends: take the lease when it is free,
# expired, or already ours; the RETURNING row says whether we hold it.
ACQUIRE_LEASE = (
    "INSERT INTO microsoft_calendar_lease_v1 AS l (name, owner, expires_at_ms) VALUES ({p}, {p}, {p}) "
    "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at_ms = EXCLUDED.expires_at_ms "
    "WHERE l.owner = EXCLUDED.owner OR l.expires_at_ms < {p} RETURNING owner"
)
RELEASE_LEASE = "DELETE FROM microsoft_calendar_lease_v1 WHERE name = {p} AND owner = {p}"

VERSION_TABLE = {
    "postgres": "CREATE TABLE IF NOT EXISTS public.schema_version (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
              "description TEXT NOT NULL, applied_at TEXT NOT NULL)",
}

# Reserve n outbox sequence numbers for a user; returns the last one. The row lock it takes (held to
# the end of the transaction) orders one user's writers, so seq order is commit order.
ALLOCATE_OUTBOX_SEQ = (
    "INSERT INTO microsoft_calendar_outbox_seq_v1 AS s (microsoft_user_id, last_seq) VALUES ({p}, {p}) "
    "ON CONFLICT (microsoft_user_id) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq RETURNING last_seq"
)

# Sign-in states used: an insert that only the first caller makes (RETURNING says whether it was us), and
# the sweep of markers whose state has expired anyway. The `flow` column (once the stored flow) holds "used".
CLAIM_FLOW = ("INSERT INTO microsoft_calendar_oauth_flow_v1 (flow_key, flow, expires_at_ms) VALUES ({p}, 'used', {p}) "
              "ON CONFLICT (flow_key) DO NOTHING RETURNING flow_key")
SWEEP_FLOWS = "DELETE FROM microsoft_calendar_oauth_flow_v1 WHERE expires_at_ms < {p}"

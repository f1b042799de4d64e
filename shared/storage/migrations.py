"""Versioned schema changes for the SQL backends.

Each migration has a number and is applied once, in order, inside a
transaction; `schema_version` records what ran. Later changes append a
migration (e.g. `ALTER TABLE ... ADD COLUMN`) rather than editing the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.storage import schema
from shared.storage.fixture import real_table_ddl


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[str], list[str]]  # dialect -> SQL statements


def _initial(dialect: str) -> list[str]:
    return [stmt for spec in schema.ALL for stmt in real_table_ddl(spec, dialect)]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "replicated tables (WebhookDB shape) and operational state", _initial),
)

VERSION_TABLE = {
    "postgres": "CREATE TABLE IF NOT EXISTS public.schema_version (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
              "description TEXT NOT NULL, applied_at TEXT NOT NULL)",
}

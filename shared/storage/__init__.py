"""The repository: one interface for everything the product stores, three backends.

`open_repository()` picks PostgreSQL, Azure Table Storage or SQLite from
DATABASE_BACKEND. Backend modules (and psycopg / azure.*) are imported only
then, so importing this package stays cheap for the notification endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.storage.base import Repository
from shared.storage.types import (
    KEEP,
    AccountState,
    CalendarRow,
    ChangedRow,
    EventRow,
    OutboxEntry,
    PageResult,
    SyncCursor,
    UserRow,
)

if TYPE_CHECKING:
    from shared.config import Settings

__all__ = [
    "KEEP", "AccountState", "CalendarRow", "ChangedRow", "EventRow", "OutboxEntry", "PageResult", "Repository",
    "SyncCursor", "UserRow", "build_repository", "open_repository",
]


def build_repository(settings: Settings) -> Repository:
    """A new repository for `settings` (not cached; the caller closes it)."""
    backend = settings.database_backend
    if backend == "postgres":
        settings.require("pg_dsn")
        from shared.storage.postgres import PostgresRepository

        return PostgresRepository(str(settings.pg_dsn), pool_max=settings.pg_pool_max)
    if backend == "tables":
        from shared.storage.tables import TablesRepository

        return TablesRepository.from_settings(settings)
    from shared.storage.sqlite import SqliteRepository

    return SqliteRepository(settings.sqlite_path)


def open_repository(settings: Settings | None = None) -> Repository:
    """The process's repository (schema ensured once), or a fresh one for explicit settings.

    Without arguments the instance is cached through `shared.runtime`; with settings
    it is cached per backend and target so tests and the CLI can point elsewhere.
    """
    from shared import runtime
    from shared.config import get_settings

    settings = settings or get_settings()
    target = {"postgres": settings.pg_dsn, "tables": settings.tables_connection_string or settings.tables_account_url,
              "sqlite": settings.sqlite_path}.get(settings.database_backend)
    key = f"storage.repository:{settings.database_backend}:{target}:{settings.table_prefix}"

    def factory() -> Repository:
        repo = build_repository(settings)
        repo.ensure_schema()
        return repo

    return runtime.cached(key, factory)

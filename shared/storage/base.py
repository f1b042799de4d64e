"""The repository: everything the product stores, as one facade over the backends.

Callers only see the public methods of `Repository`. Its semantics are written once, split by
concern into mixins over `engine.RepositoryCore` (accounts, replica rows, sync rounds, outbox,
flows); a backend (postgres.py, sqlite.py, tables.py) implements the core's small primitives.
"""

from __future__ import annotations

from shared.storage.accounts import AccountStore
from shared.storage.engine import Conflict
from shared.storage.flows import FlowStore
from shared.storage.outbox import OutboxStore
from shared.storage.replica import ReplicaRows
from shared.storage.rounds import SyncRounds
from shared.storage.rows import (
    Incoming,
    Mapped,
    Stored,
    canonical_json,
    change_version,
    chunks,
    digest,
    map_batch,
    map_row,
    newer_and_different_sql,
    utcnow,
)

__all__ = ["Conflict", "Incoming", "Mapped", "Repository", "Stored", "canonical_json", "change_version", "chunks",
           "digest", "map_batch", "map_row", "newer_and_different_sql", "utcnow"]


class Repository(AccountStore, ReplicaRows, SyncRounds, OutboxStore, FlowStore):
    """Everything the product stores. Backends: postgres.py, sqlite.py, tables.py."""

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

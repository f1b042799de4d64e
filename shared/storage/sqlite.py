"""SQLite backend: the embedded default for local runs.

Same tables and semantics as PostgreSQL. WAL mode lets readers run beside the
single writer; one connection guarded by a lock serializes this process's
writers, and `BEGIN IMMEDIATE` takes the write lock before the rows that
change detection reads, so read-decide-write is atomic across processes too.
JSON is stored as canonical text, timestamps as fixed-width ISO-8601 UTC text
(so they sort), booleans as 0/1.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.private_files import prepare_private_file
from shared.storage import migrations, schema
from shared.storage.rows import Mapped, Stored, canonical_json, chunks, digest, utcnow
from shared.storage.schema import TableSpec
from shared.storage.sqlbackend import SqlRepository, updates_by_columns

_VARS_PER_STATEMENT = 900


def encode(col_type: str, value: Any) -> Any:
    if value is None:
        return None
    if col_type == schema.TIMESTAMP:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if col_type == schema.BOOL:
        return int(bool(value))
    if col_type == schema.JSON:
        return canonical_json(value)
    return value


def decode(col_type: str, value: Any) -> Any:
    if value is None:
        return None
    if col_type == schema.TIMESTAMP:
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if col_type == schema.BOOL:
        return bool(value)
    if col_type == schema.JSON:
        return json.loads(value)
    return value


def _where(spec: TableSpec, filters: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for name, value in filters.items():
        col = spec.column(name)
        if isinstance(value, list | tuple | set | frozenset):
            values = list(value)
            if not values:
                return " WHERE 0", []
            clauses.append(f"{name} IN ({', '.join('?' * len(values))})")
            params += [encode(col.type, v) for v in values]
        else:
            clauses.append(f"{name} = ?")
            params.append(encode(col.type, value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class SqliteRepository(SqlRepository[sqlite3.Connection]):
    placeholder = "?"
    backend = "sqlite"
    chunk_size = 500

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            prepare_private_file(self.path)  # 0600: rows and encrypted tokens are nobody else's
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ensure_schema(self) -> None:
        with self._lock:
            self._conn.execute(migrations.VERSION_TABLE["sqlite"])
            with self._transaction("") as conn:
                done = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
                for migration in migrations.MIGRATIONS:
                    if migration.version in done:
                        continue
                    for statement in migration.statements("sqlite"):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                                 (migration.version, migration.description, encode(schema.TIMESTAMP, utcnow())))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])

    @contextmanager
    def _transaction(self, partition: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _fetch_stored(self, tx: sqlite3.Connection, spec: TableSpec, partition: str,
                      keys: list[str]) -> dict[str, Stored]:
        kept = spec.names(schema.CONTEXT, schema.MANAGED, schema.META)
        version = "row_version" if spec.versioned else "''"
        stored: dict[str, Stored] = {}
        for chunk in chunks(keys, _VARS_PER_STATEMENT):
            where, params = _where(spec, {spec.remote_key: list(chunk)})
            sql = f"SELECT {spec.remote_key}, {version}, data, {', '.join(kept)} FROM {spec.name}{where}"  # noqa: S608
            for row in tx.execute(sql, params):
                columns = {name: decode(spec.column(name).type, v) for name, v in zip(kept, row[3:], strict=True)}
                stored[row[0]] = Stored(row[0], row[1] or "", digest(row[2]), columns)
        return stored

    def _write_rows(self, tx: sqlite3.Connection, spec: TableSpec, partition: str,
                    writes: list[tuple[Mapped, Stored | None]], now: datetime) -> None:
        stamp = encode(schema.TIMESTAMP, now)
        creates = [row for row, stored in writes if stored is None]
        updates = [row for row, stored in writes if stored is not None]
        if creates:
            names = list(creates[0].values)
            sql = (f"INSERT INTO {spec.name} ({', '.join(names)}, data, row_created_at, row_updated_at) "  # noqa: S608
                   f"VALUES ({', '.join('?' * (len(names) + 3))})")
            tx.executemany(sql, [[encode(spec.column(n).type, r.values.get(n)) for n in names]
                                 + [r.text, stamp, stamp] for r in creates])
        if updates:
            names = [n for n in updates[0].values if n != spec.remote_key]
            sets = ", ".join(f"{n} = ?" for n in [*names, "data", "row_updated_at"])
            sql = f"UPDATE {spec.name} SET {sets} WHERE {spec.remote_key} = ?"  # noqa: S608
            tx.executemany(sql, [[encode(spec.column(n).type, r.values.get(n)) for n in names]
                                 + [r.text, stamp, r.key] for r in updates])

    def _select(self, spec: TableSpec, partition: str | None, filters: dict[str, Any],
                tx: sqlite3.Connection | None = None,
                columns: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        names = list(columns or spec.names())
        where, params = _where(spec, filters)
        order = f" ORDER BY {', '.join(spec.key)}" + (f" LIMIT {int(limit)}" if limit is not None else "")
        sql = f"SELECT {', '.join(names)} FROM {spec.name}{where}{order}"  # noqa: S608
        with self._lock:
            rows = (tx or self._conn).execute(sql, params).fetchall()
        types = [spec.column(n).type for n in names]
        return [{n: decode(t, v) for n, t, v in zip(names, types, row, strict=True)} for row in rows]

    def _delete(self, tx: sqlite3.Connection, spec: TableSpec, partition: str, filters: dict[str, Any]) -> list[str]:
        listed = next((n for n, v in filters.items() if isinstance(v, list | tuple | set | frozenset)), None)
        batches = ([{**filters, listed: list(c)} for c in chunks(list(filters[listed]), _VARS_PER_STATEMENT)]
                   if listed else [filters])
        deleted: list[str] = []
        for batch in batches:
            where, params = _where(spec, batch)
            sql = f"DELETE FROM {spec.name}{where} RETURNING {spec.key[-1]}"  # noqa: S608
            deleted += [row[0] for row in tx.execute(sql, params).fetchall()]
        return deleted

    def _put(self, tx: sqlite3.Connection, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        names = spec.names()
        sql = (f"INSERT OR REPLACE INTO {spec.name} ({', '.join(names)}) "  # noqa: S608
               f"VALUES ({', '.join('?' * len(names))})")
        tx.executemany(sql, [[encode(spec.column(n).type, r.get(n)) for n in names] for r in rows])

    def _set_columns(self, tx: sqlite3.Connection, spec: TableSpec, partition: str,
                     updates: dict[str, dict[str, Any]]) -> None:
        for names, params in updates_by_columns(updates, lambda n, v: encode(spec.column(n).type, v)).items():
            sets = ", ".join(f"{spec.column(n).name} = ?" for n in names)
            tx.executemany(f"UPDATE {spec.name} SET {sets} WHERE {spec.remote_key} = ?", params)  # noqa: S608

    def _distinct(self, spec: TableSpec, partition: str, column: str, filters: dict[str, Any]) -> set[Any]:
        where, params = _where(spec, filters)
        col = spec.column(column)
        with self._lock:
            rows = self._conn.execute(f"SELECT DISTINCT {col.name} FROM {spec.name}{where}", params)  # noqa: S608
            return {decode(col.type, row[0]) for row in rows if row[0] is not None}

    def _count(self, spec: TableSpec, partition: str | None) -> int:
        where, params = _where(spec, {spec.partition: partition} if partition else {})
        with self._lock:
            return int(self._conn.execute(f"SELECT count(*) FROM {spec.name}{where}", params).fetchone()[0])  # noqa: S608

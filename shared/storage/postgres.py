"""PostgreSQL backend: psycopg 3 with a connection pool.

Upserts are one native statement per chunk,
`INSERT ... ON CONFLICT (<remote id>) DO UPDATE ... WHERE <newer-and-different>`,
with the predicate rendered from the same rule as the other backends
(`rows.newer_and_different_sql`); `RETURNING (xmax = 0)` tells created rows
from updated ones, and rows the WHERE rejected are not returned at all, so
nothing is written when nothing changed. A chunk is merged over `unnest` of
binary arrays, one statement and one round trip, in a unit run in pipeline mode
(only statements whose results are read wait for the server); COPY into a
per-connection temporary table and one merge is the alternative strategy
(bench/bench_upsert.py measures every strategy). Rows are mapped chunk by
chunk inside the transaction, each while the server merges the previous chunk
(`_upsert_ordered`). All SQL is parameterized; identifiers are composed with
psycopg.sql from the table specs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from shared.storage import migrations, schema
from shared.storage.engine import Conflict
from shared.storage.fixture import SQL_TYPES
from shared.storage.rows import Incoming, Mapped, map_batch, newer_and_different_sql
from shared.storage.schema import TableSpec
from shared.storage.sqlbackend import UNSEEN_IDS, SqlRepository, updates_by_columns
from shared.storage.textsafety import TextRules
from shared.storage.types import ChangedRow

_LOCK_ID = 7720358  # advisory lock serializing concurrent migrations
STATEMENT_CACHE_SIZE = 256  # statement shapes kept composed (the app's own use a few dozen)


def _param(col_type: str, value: Any) -> Any:
    if value is not None and col_type == schema.JSON:
        return Jsonb(value)
    return value


def _stage_type(col_type: str) -> str:
    """Column type in the COPY stage: JSON travels as its canonical text and is cast in the merge."""
    return "text" if col_type == schema.JSON else SQL_TYPES["postgres"][col_type]


def _copy_binary(cur: psycopg.Cursor, table: sql.Composable, cols: list[str], types: list[str],
                 rows: Iterable[list[Any]]) -> None:
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, _ids(cols))) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _pipelined(conn: psycopg.Connection[Any]) -> bool:
    """Whether the connection is in pipeline mode, where COPY cannot run."""
    return conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


def _decode(col_type: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


FilterShape = tuple[tuple[str, bool], ...]  # (column, compared with a list of values) per filter, in order


def _where(spec: TableSpec, filters: dict[str, Any]) -> tuple[FilterShape, list[Any]]:
    """The shape of the WHERE clause (what `_where_sql` renders, a statement cache key) and its parameters."""
    shape, params = [], []
    for name, value in filters.items():
        col = spec.column(name)
        many = isinstance(value, list | tuple | set | frozenset)
        shape.append((name, many))
        params.append([_param(col.type, v) for v in value] if many else _param(col.type, value))
    return tuple(shape), params


def _where_sql(shape: FilterShape) -> sql.Composable:
    clauses = [sql.SQL("{} = ANY(%s)" if many else "{} = %s").format(sql.Identifier(name)) for name, many in shape]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")


def _count_of(cursor: psycopg.Cursor[Any]) -> int:
    """The integer a one-row aggregate (count, max) answered."""
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _ids(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


PgConnection = psycopg.Connection[tuple[Any, ...]]


class PostgresRepository(SqlRepository[PgConnection]):
    placeholder = "%s"
    backend = "postgres"
    chunk_size = 1000  # small enough to overlap mapping and merging well, large enough for COPY
    copy_threshold = 200  # outbox rows from which a unit that is not pipelined appends them by COPY
    map_ahead = False  # rows are mapped in _upsert_ordered, overlapped with the server's work
    text_rules = TextRules(nul=False, surrogates_in_data=False)  # text and jsonb refuse both
    # The chunk's ids as one array (an InitPlan): the DELETE is then an index scan on the unique id,
    # never a join the planner could turn into a scan of every user's events.
    delete_unseen = (f"DELETE FROM {schema.EVENTS.name} WHERE microsoft_event_id = ANY(ARRAY({UNSEEN_IDS})) "  # noqa: S608
                     "RETURNING microsoft_event_id")

    def __init__(self, dsn: str, *, pool_max: int = 4) -> None:
        self.dsn = dsn
        self.pool = ConnectionPool(dsn, min_size=1, max_size=max(1, pool_max), open=True,
                                   kwargs={"autocommit": True, "options": "-c TimeZone=UTC"})
        self.bulk_strategy = "auto"  # "auto" | "unnest" | "copy" | "executemany"
        self._statements: dict[tuple[Hashable, ...], bytes] = {}

    def _statement(self, key: tuple[Hashable, ...], build: Callable[[], sql.Composable]) -> bytes:
        """A statement's text, composed once per shape: composing psycopg.sql objects on every call cost
        more Python time than dumping the parameters (a page's unit runs six statements)."""
        text = self._statements.get(key)
        if text is None:
            text = build().as_bytes(None)
            if len(self._statements) < STATEMENT_CACHE_SIZE:  # shapes callers choose (columns) stay bounded
                self._statements[key] = text
        return text

    def close(self) -> None:
        self.pool.close()

    def ensure_schema(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(migrations.VERSION_TABLE["postgres"])
            done = {row[0] for row in conn.execute("SELECT version FROM public.schema_version")}
            for migration in migrations.MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in migration.statements("postgres"):
                    conn.execute(statement)
                conn.execute("INSERT INTO public.schema_version (version, description) VALUES (%s, %s)",
                             (migration.version, migration.description))

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            return _count_of(conn.execute("SELECT coalesce(max(version), 0) FROM public.schema_version"))

    @contextmanager
    def _transaction(self, partition: str) -> Iterator[PgConnection]:
        """A unit in pipeline mode: a statement whose result nobody reads (round markers, outbox entries,
        the cursor, COMMIT) is sent without waiting for the server; the connection waits only where a
        result is read. A page's unit is 4 round trips instead of 8, and each round trip is also a wait
        for the GIL when other threads work (the page fetched ahead). COPY cannot run in pipeline mode:
        chunks are merged through `unnest` (as fast as COPY + merge at 1,000 rows, bench/bench_upsert.py)
        unless `bulk_strategy` asks for COPY, whose units are then not pipelined."""
        try:
            with self.pool.connection() as conn, ExitStack() as stack:
                if self.bulk_strategy != "copy":
                    stack.enter_context(conn.pipeline())
                with conn.transaction():
                    yield conn
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            raise Conflict(str(exc)) from exc

    @contextmanager
    def _conn(self, tx: PgConnection | None) -> Iterator[PgConnection]:
        if tx is not None:
            yield tx
        else:
            with self.pool.connection() as conn:
                yield conn

    # ------------------------------------------------------------------ upsert
    def _upsert_sql(self, spec: TableSpec, names: list[str], compared: Sequence[str],
                    source: sql.Composable) -> sql.Composed:
        updated = [n for n in names if n != spec.remote_key] + ["data", "row_updated_at"]
        return sql.SQL(
            "INSERT INTO {table} AS t ({cols}) {source} ON CONFLICT ({key}) DO UPDATE SET {sets} "
            "WHERE {guard} RETURNING t.{key}, (t.xmax = 0)"
        ).format(
            table=sql.Identifier(spec.name), cols=_ids([*names, "data", "row_created_at", "row_updated_at"]),
            source=source, key=sql.Identifier(spec.remote_key),
            sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in updated),
            guard=sql.SQL(newer_and_different_sql(spec, compared, "t", "EXCLUDED")),
        )

    def _upsert_ordered(self, tx: PgConnection, spec: TableSpec, partition: str, batches: list[list[Incoming]],
                        now: datetime) -> list[ChangedRow]:
        """Chunks in key order, each mapped while the server merges the one before.

        Mapping Graph JSON is Python work and a chunk's merge is server work of about the same
        size; one after the other, each side idles while the other works. So a chunk's merge (one
        statement: rows as arrays through `unnest`, or COPY into a stage for large chunks) is sent
        in pipeline mode and its RETURNING rows are read only after the next chunk is mapped. COPY
        cannot run in a pipeline: the next chunk is staged once the merge is done. Same statements
        in the same order in the same transaction as chunk by chunk.
        """
        if not batches:
            return []
        changes: list[ChangedRow] = []
        following = map_batch(batches[0])
        for upcoming in [*batches[1:], []]:
            if not following:  # every row of the chunk was left out (map_batch logged why)
                following = map_batch(upcoming)
                continue
            rows, names = following, list(following[0].values)
            strategy = self._strategy()
            if strategy == "executemany":
                returned = self._merge_executemany(tx, spec, names, rows, now)
                following = map_batch(upcoming)
            else:
                merge, params = (self._stage(tx, spec, names, rows, now), None) if strategy == "copy" else \
                    self._unnest(spec, names, rows, now)
                with tx.cursor() as cur:
                    with tx.pipeline():
                        cur.execute(merge, params)  # sent; the server works on it while ...
                        following = map_batch(upcoming)  # ... Python maps the next chunk
                    returned = cur.fetchall()
            by_key = {r.key: r for r in rows}
            changes += [ChangedRow(spec.name, key, "created" if inserted else "updated", by_key[key].data,
                                   by_key[key].text)
                        for key, inserted in returned]
        return changes

    def _strategy(self) -> str:
        """How a chunk is merged: one `unnest` statement (pipelined units, the default), or COPY into a
        stage + one merge when `bulk_strategy` asks for it (`_transaction` then does not pipeline)."""
        return "unnest" if self.bulk_strategy == "auto" else self.bulk_strategy

    def _unnest(self, spec: TableSpec, names: list[str], rows: list[Mapped],
                now: datetime) -> tuple[bytes, list[list[Any]]]:
        """The merge of a chunk as ONE statement: each column's values travel as one typed array
        (binary, psycopg's C dumpers) and `unnest` turns them back into rows. One round trip and one
        statement execution per chunk, no temporary table: the fastest path for page-sized chunks."""
        cols = [*names, "data", "row_created_at", "row_updated_at"]
        types = [_stage_type(spec.column(n).type) for n in cols]
        arrays: list[list[Any]] = [[row.values.get(n) for row in rows] for n in names]
        arrays += [[row.text for row in rows], [now] * len(rows), [now] * len(rows)]
        compared = rows[0].compared

        def merge() -> sql.Composed:
            source = sql.SQL("SELECT {} FROM unnest({}) AS u({}) ORDER BY u.{}").format(
                sql.SQL(", ").join(sql.SQL("u.{}::jsonb").format(sql.Identifier(n))
                                   if spec.column(n).type == schema.JSON
                                   else sql.SQL("u.{}").format(sql.Identifier(n)) for n in cols),
                sql.SQL(", ").join(sql.SQL("%b::{}[]").format(sql.SQL(t)) for t in types),
                _ids(cols), sql.Identifier(spec.remote_key))
            return self._upsert_sql(spec, names, compared, source)

        return self._statement(("merge", spec.name, tuple(names), tuple(compared)), merge), arrays

    def _values(self, spec: TableSpec, names: list[str], row: Mapped, now: datetime) -> list[Any]:
        return [_param(spec.column(n).type, row.values.get(n)) for n in names] + [row.text, now, now]

    def _merge_executemany(self, conn: psycopg.Connection, spec: TableSpec, names: list[str],
                           rows: list[Mapped], now: datetime) -> list[tuple[str, bool]]:
        placeholders = sql.SQL(", ").join([sql.Placeholder()] * len(names) + [sql.SQL("%s::jsonb")]
                                          + [sql.Placeholder()] * 2)
        query = self._upsert_sql(spec, names, rows[0].compared, sql.SQL("VALUES ({})").format(placeholders))
        returned: list[tuple[str, bool]] = []
        with conn.cursor() as cur:
            cur.executemany(query, [self._values(spec, names, r, now) for r in rows], returning=True)
            while True:
                returned += cur.fetchall()
                if not cur.nextset():
                    break
        return returned

    def _stage(self, conn: psycopg.Connection, spec: TableSpec, names: list[str],
               rows: list[Mapped], now: datetime) -> sql.Composed:
        """Binary COPY into a temp table; returns the one INSERT ... ON CONFLICT from it (the merge).

        JSON is staged as text (the canonical text already computed) and cast in the merge,
        so no value is serialized twice; binary COPY uses psycopg's C dumpers (5x faster
        than text COPY here, see bench/bench_upsert.py).
        """
        stage = sql.Identifier(f"stage_{spec.short}")
        cols = [*names, "data", "row_created_at", "row_updated_at"]
        types = [_stage_type(spec.column(n).type) for n in cols]
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            stage, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t))
                                      for n, t in zip(cols, types, strict=True))))
        conn.execute(sql.SQL("TRUNCATE {}").format(stage))
        with conn.cursor() as cur:
            _copy_binary(cur, stage, cols, types,
                         ([row.values.get(n) for n in names] + [row.text, now, now] for row in rows))
        selected = sql.SQL(", ").join(
            sql.SQL("{}::jsonb").format(sql.Identifier(n)) if spec.column(n).type == schema.JSON
            else sql.Identifier(n) for n in cols)
        return self._upsert_sql(spec, names, rows[0].compared, sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            selected, stage, sql.Identifier(spec.remote_key)))

    # ------------------------------------------------------------------ other primitives
    def _select(self, spec: TableSpec, partition: str | None, filters: dict[str, Any], tx: PgConnection | None = None,
                columns: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        names = list(columns or spec.names())
        shape, params = _where(spec, filters)
        limited = limit is not None
        query = self._statement(("select", spec.name, tuple(names), shape, limited), lambda: sql.SQL(
            "SELECT {} FROM {}{} ORDER BY {}{}").format(
            _ids(names), sql.Identifier(spec.name), _where_sql(shape), _ids(spec.key),
            sql.SQL(" LIMIT %s") if limited else sql.SQL("")))
        if limit is not None:
            params.append(int(limit))
        types = [spec.column(n).type for n in names]
        with self._conn(tx) as conn:
            rows = conn.execute(query, params).fetchall()
        return [{n: _decode(t, v) for n, t, v in zip(names, types, row, strict=True)} for row in rows]

    def _delete(self, tx: PgConnection, spec: TableSpec, partition: str, filters: dict[str, Any]) -> list[str]:
        shape, params = _where(spec, filters)
        query = self._statement(("delete", spec.name, shape), lambda: sql.SQL("DELETE FROM {}{} RETURNING {}").format(
            sql.Identifier(spec.name), _where_sql(shape), sql.Identifier(spec.key[-1])))
        return [row[0] for row in tx.execute(query, params).fetchall()]

    def _put(self, tx: PgConnection, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """One row: a plain INSERT .. ON CONFLICT. Many rows (a page's round markers, its outbox
        entries): the same statement once over `unnest` arrays instead of once per row."""
        if not rows:
            return
        names = spec.names()
        one_by_one = len(rows) == 1 or any(spec.column(n).type == schema.JSON for n in names)
        query = self._statement(("put", spec.name, one_by_one), lambda: self._put_sql(spec, one_by_one))
        if one_by_one:
            with tx.cursor() as cur:
                cur.executemany(query, [[_param(spec.column(n).type, r.get(n)) for n in names] for r in rows])
            return
        # One statement may not touch a row twice: keep the last row of each key, as one per row would.
        latest = list({tuple(r.get(k) for k in spec.key): r for r in rows}.values())
        tx.execute(query, [[r.get(n) for r in latest] for n in names])

    @staticmethod
    def _put_sql(spec: TableSpec, one_by_one: bool) -> sql.Composed:
        """INSERT .. ON CONFLICT replacing the row: one row's VALUES, or every row's column as an array."""
        names = spec.names()
        others = [n for n in names if n not in spec.key]
        action = (sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in others)) if others else sql.SQL(
            "DO NOTHING")
        source = sql.SQL("VALUES ({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(names))) if one_by_one \
            else sql.SQL("SELECT * FROM unnest({})").format(sql.SQL(", ").join(
                sql.SQL("%b::{}[]").format(sql.SQL(SQL_TYPES["postgres"][spec.column(n).type])) for n in names))
        return sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT ({}) {}").format(
            sql.Identifier(spec.name), _ids(names), source, _ids(spec.key), action)

    def _append(self, tx: PgConnection, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        """New rows only (no conflict possible): COPY straight into the table for large batches."""
        if len(rows) < self.copy_threshold or _pipelined(tx):
            self._put(tx, spec, partition, rows)
            return
        names = spec.names()
        types = [SQL_TYPES["postgres"][spec.column(n).type] for n in names]
        with tx.cursor() as cur:
            _copy_binary(cur, sql.Identifier(spec.name), names, types, ([row.get(n) for n in names] for row in rows))

    def _set_columns(self, tx: PgConnection, spec: TableSpec, partition: str,
                     updates: dict[str, dict[str, Any]]) -> None:
        for names, params in updates_by_columns(updates, lambda n, v: _param(spec.column(n).type, v)).items():
            query = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
                sql.Identifier(spec.name),
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names),
                sql.Identifier(spec.remote_key))
            with tx.cursor() as cur:
                cur.executemany(query, params)

    def _distinct(self, spec: TableSpec, partition: str, column: str, filters: dict[str, Any]) -> set[Any]:
        shape, params = _where(spec, filters)
        col = spec.column(column)
        query = sql.SQL("SELECT DISTINCT {} FROM {}{}").format(sql.Identifier(col.name), sql.Identifier(spec.name),
                                                               _where_sql(shape))
        with self.pool.connection() as conn:
            return {_decode(col.type, row[0]) for row in conn.execute(query, params) if row[0] is not None}

    def _count(self, spec: TableSpec, partition: str | None) -> int:
        shape, params = _where(spec, {spec.partition: partition} if partition else {})
        with self.pool.connection() as conn:
            return _count_of(conn.execute(sql.SQL("SELECT count(*) FROM {}{}").format(
                sql.Identifier(spec.name), _where_sql(shape)), params))

"""Azure Table Storage backend (azure-data-tables; blobs for oversized rows).

Key design (see also docs/STORAGE.md):
- Physical tables `<TABLE_PREFIX>users`, `...calendars`, `...accounts`, `...events`,
  `...meta`. PartitionKey = the encoded microsoft_user_id in every table, so one
  user's rows are one partition and a user can be deleted or listed cheaply.
- RowKey = a kind prefix + the encoded remote id: users/accounts `u:`, calendars
  `k:<calendar>`, events `e:<event>`. Sync cursors (`c:<calendar>`) and round
  markers (`s:<calendar>:<round>:<event>`) live in the events table, in the
  user's partition, so a page of events, its removals, its markers and the
  cursor can be committed in ONE entity-group transaction.
- Key characters Table Storage refuses are escaped reversibly (`tablekeys.py`).
- `data` is split over `data_<i>` properties (<= 30,000 UTF-16 units each), with
  `data_hash` (SHA-256 of the canonical JSON) used by change detection; above
  ~800 KB the JSON goes to the blob container `<prefix>-rows` and the entity
  keeps `data_blob`. Never truncated.
- Writes are transactions of <= 100 operations (and <= ~3 MB) per partition. A
  unit larger than that (a big page, a 10,000-row upsert) is committed in slices
  in order, and the cursor is always the last operation, so a crash in between
  leaves the old cursor and the page is replayed (upserts are idempotent).
- Outbox entries (`o:<seq>`, seq zero-padded so RowKeys sort) and the user's
  sequence counter (`n:`) live in the events table too. They go into the same
  entity-group transaction as the rows when the unit fits in one; otherwise
  they are committed first, before any row they describe: a crash in between
  leaves entries for changes not stored yet (the replayed page records them
  again, with the same de-dup id), never a stored change without its entry.
- Used sign-in states are entities of the meta table (PartitionKey `oauthflow`,
  RowKey = sha256(state) hex); claiming one is a create (409 = used already).
- Newer-wins under concurrent writers: rows are read with their ETag; updates
  are `UpdateMode.REPLACE` with `If-Match`, inserts are `create`; a 409/412/404
  fails the transaction and the whole unit is re-read and retried.
- Integers are INT64 properties; timestamps are Edm.DateTime (UTC).

Longer than the SQL backends: Table Storage has no statements to lean on, so key encoding,
data slicing, ordered transaction slices and If-Match retries are this module's own code,
and they only make sense read together.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, TableTransactionError, UpdateMode

from shared.storage import base, schema, tablekeys
from shared.storage.engine import Conflict
from shared.storage.rows import Mapped, Stored, canonical_json, digest
from shared.storage.schema import TableSpec
from shared.storage.textsafety import TextRules

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity
    from azure.storage.blob import BlobServiceClient

    from shared.config import Settings

Op = tuple[Any, ...]  # ("create" | "upsert" | "update" | "delete", entity[, options]): a transaction operation

RESENDS = 2  # a batch whose connection was reset is sent again this often before the unit is retried
MAX_BATCH = 100
POINT_READS = 20  # up to this many keys are read one by one; a longer list of ids concurrently:
MAX_POINT_READS = 2000  # up to this many (a unit's chunk of rows), beyond which the partition is scanned
MAX_BATCH_BYTES = 3_000_000  # a transaction's body may not exceed 4 MiB; leave room for the envelope
SCHEMA_VERSION = 5  # the SQL migrations' number; 2 added leases, 3 the outbox and sign-ins (meta/events here),
# 4 the calendar subscriptions (accounts table, "s:" rows), 5 the outbox entries' row_data (a new property)
FLOW_PARTITION = "oauthflow"
_PLACEMENT = {  # spec name -> (physical table suffix, RowKey prefix)
    schema.USERS.name: ("users", "u:"),
    schema.ACCOUNTS.name: ("accounts", "u:"),
    schema.CALENDAR_SUBSCRIPTIONS.name: ("accounts", "s:"),
    schema.CALENDARS.name: ("calendars", "k:"),
    schema.EVENTS.name: ("events", "e:"),
    schema.CURSORS.name: ("events", "c:"),
    schema.SEEN.name: ("events", "s:"),
    schema.OUTBOX.name: ("events", "o:"),
    schema.OUTBOX_SEQ.name: ("events", "n:"),
}
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONFLICT_STATUS = {404, 409, 412}


def _upper_bound(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _op_bytes(op: Op) -> int:
    """About what an operation adds to a transaction's body (its entity's JSON)."""
    return 200 + sum(len(str(k)) + (len(v.encode("utf-8")) if isinstance(v, str) else 32)
                     for k, v in op[1].items())


@dataclass
class _Tx:
    """Operations queued per physical table, committed in <= 100-operation transactions at exit.

    Operations queued while `leading` is set (outbox entries and their counter) are committed before
    or together with the others, never after them.
    """

    ops: dict[str, list[Op]] = field(default_factory=dict)
    lead: dict[str, list[Op]] = field(default_factory=dict)
    leading: bool = False
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def add(self, table: str, op: Op) -> None:
        (self.lead if self.leading else self.ops).setdefault(table, []).append(op)


class TablesRepository(base.RepositoryBase[_Tx]):
    backend = "tables"
    chunk_size = 20_000  # change detection scans the partition once per chunk: keep bulk writes in one
    parallel_batches = 4
    read_concurrency = 8  # point reads in flight for a list of ids (`_read_points`)
    text_rules = TextRules(column_units=tablekeys.MAX_PROPERTY_UNITS)  # data is sliced; a column is one property

    def __init__(self, service: TableServiceClient, *, prefix: str = "calsync",
                 blob_service: BlobServiceClient | None = None) -> None:
        self.service = service
        self.blob_service = blob_service
        self.prefix = prefix
        self.tables = {suffix: self._table_name(suffix) for suffix in {"users", "accounts", "calendars", "events",
                                                                          "meta"}}
        self.container = f"{prefix.lower()}-rows"
        self._clients = {suffix: service.get_table_client(name) for suffix, name in self.tables.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> TablesRepository:
        prefix = settings.table_prefix or "calsync"
        if settings.tables_connection_string:
            from azure.storage.blob import BlobServiceClient

            conn = settings.tables_connection_string
            return cls(TableServiceClient.from_connection_string(conn), prefix=prefix,
                       blob_service=BlobServiceClient.from_connection_string(conn))
        settings.require("tables_account_url")
        from azure.identity import DefaultAzureCredential  # only deployments with a managed identity need it

        credential = DefaultAzureCredential()
        blobs: BlobServiceClient | None = None
        if settings.blobs_account_url:
            from azure.storage.blob import BlobServiceClient

            blobs = BlobServiceClient(settings.blobs_account_url, credential=credential)
        return cls(TableServiceClient(endpoint=str(settings.tables_account_url), credential=credential),
                   prefix=prefix, blob_service=blobs)

    def _table_name(self, suffix: str) -> str:
        name = f"{self.prefix}{suffix}"
        if not _TABLE_NAME.match(name):
            raise ValueError(f"TABLE_PREFIX gives an invalid table name {name!r} (letters and digits, 3-63)")
        return name

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self.service.close()
        if self.blob_service is not None:
            self.blob_service.close()

    def ensure_schema(self) -> None:
        for name in self.tables.values():
            self.service.create_table_if_not_exists(name)
        if self.blob_service is not None:
            with suppress(ResourceExistsError):
                self.blob_service.create_container(self.container)
        self._clients["meta"].upsert_entity({"PartitionKey": "schema", "RowKey": "version",
                                             "version": SCHEMA_VERSION}, mode=UpdateMode.REPLACE)

    def schema_version(self) -> int:
        return int(self._clients["meta"].get_entity("schema", "version")["version"])

    # ------------------------------------------------------------------ keys and entities
    def _row_key(self, spec: TableSpec, values: dict[str, Any]) -> str:
        parts = [f"{int(values[k]):020d}" if spec.column(k).type == schema.INT else tablekeys.encode_key(str(values[k]))
                 for k in spec.key if k != spec.partition]  # integers zero-padded: RowKeys sort as text
        return tablekeys.checked_key(_PLACEMENT[spec.name][1] + ":".join(parts))

    def _entity(self, spec: TableSpec, values: dict[str, Any], data_text: str | None = None) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": tablekeys.encode_key(values[spec.partition]),
                                  "RowKey": self._row_key(spec, values)}
        for col in spec.columns:
            value = values.get(col.name)
            if col.role == schema.DATA or value is None:
                continue
            if col.type == schema.INT:
                value = EntityProperty(int(value), EdmType.INT64)
            elif col.type == schema.JSON:
                value = canonical_json(value)
            elif col.type == schema.TIMESTAMP:
                value = value.astimezone(UTC)
            entity[col.name] = value
        if data_text is not None:
            entity["data_hash"] = digest(data_text)
            if tablekeys.needs_blob(data_text):
                entity["data_blob"] = self._put_blob(spec, entity["data_hash"], data_text)
            else:
                parts = tablekeys.split_text(data_text)
                entity["data_parts"] = len(parts)
                entity.update({f"data_{i}": part for i, part in enumerate(parts)})
        return entity

    def _put_blob(self, spec: TableSpec, digest: str, text: str) -> str:
        if self.blob_service is None:
            raise RuntimeError("a row over 800 KB needs blob storage: set BLOBS_ACCOUNT_URL")
        name = f"{_PLACEMENT[spec.name][0]}/{digest}.json"
        self.blob_service.get_blob_client(self.container, name).upload_blob(text.encode("utf-8"), overwrite=True)
        return name

    def _read_data(self, entity: dict[str, Any]) -> dict[str, Any]:
        if entity.get("data_blob"):
            if self.blob_service is None:
                raise RuntimeError("a row stored in blob storage needs it: set BLOBS_ACCOUNT_URL")
            blob = self.blob_service.get_blob_client(self.container, entity["data_blob"])
            data: dict[str, Any] = json.loads(blob.download_blob().readall().decode("utf-8"))
        else:
            data = json.loads("".join(entity[f"data_{i}"] for i in range(int(entity.get("data_parts") or 0))))
        return data

    def _delete_blob_later(self, tx: _Tx, name: str | None) -> None:
        service = self.blob_service
        if name and service is not None:
            def drop() -> None:
                with suppress(ResourceNotFoundError):
                    service.get_blob_client(self.container, name).delete_blob()

            tx.after_commit.append(drop)

    @staticmethod
    def _value(col_type: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, EntityProperty):
            value = value.value
        if col_type == schema.TIMESTAMP:
            return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond, tzinfo=UTC)
        if col_type == schema.JSON:
            return json.loads(value)
        if col_type == schema.INT:
            return int(value)
        return value

    def _decode(self, spec: TableSpec, entity: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
        row = {}
        for name in names:
            col = spec.column(name)
            row[name] = self._read_data(entity) if col.role == schema.DATA else self._value(col.type, entity.get(name))
        return row

    # ------------------------------------------------------------------ queries
    def _client(self, spec: TableSpec) -> Any:
        return self._clients[_PLACEMENT[spec.name][0]]

    def _query(self, spec: TableSpec, partition: str | None, filters: dict[str, Any],
               select: list[str] | None, limit: int | None = None) -> list[TableEntity]:
        """Entities of `spec` matching the filters: point reads when every key part is given (a list of
        ids included), else a query of the table's RowKey range in the partition, narrowed to the span
        of a list of numbers (`_key_span`)."""
        client = self._client(spec)
        point = self._point_keys(spec, partition, filters)
        entities: Iterable[TableEntity]
        if point is not None and partition is not None:
            entities = self._read_points(client, tablekeys.encode_key(partition), point, select)
        else:
            prefix = _PLACEMENT[spec.name][1]
            lo, hi = self._key_span(spec, partition, filters) or (prefix, _upper_bound(prefix))
            params: dict[str, Any] = {"lo": lo, "hi": hi}
            clauses = ["RowKey ge @lo", "RowKey lt @hi"]
            if partition is not None:
                clauses.append("PartitionKey eq @pk")
                params["pk"] = tablekeys.encode_key(partition)
            for i, (name, value) in enumerate(filters.items()):
                if not isinstance(value, list | tuple | set | frozenset) and name != spec.partition:
                    clauses.append(f"{name} eq @f{i}")
                    params[f"f{i}"] = value
            entities = client.query_entities(" and ".join(clauses), parameters=params, select=select,
                                             results_per_page=min(limit or 1000, 1000))
        matching = (e for e in entities if self._matches(spec, e, filters))
        return list(itertools.islice(matching, limit) if limit is not None else matching)

    def _point_keys(self, spec: TableSpec, partition: str | None, filters: dict[str, Any]) -> list[str] | None:
        """The RowKeys to read one by one: every key part given, as few combinations as POINT_READS, or
        one key part given as a list of ids (up to MAX_POINT_READS). Ids that Graph chose lie scattered
        over a mailbox's partition; numbers we allocate (outbox seqs) are dense: `_key_span` reads them."""
        parts = [k for k in spec.key if k != spec.partition]
        if partition is None or not parts or any(k not in filters for k in parts):
            return None
        choices = [v if isinstance(v, list | tuple | set | frozenset) else [v] for v in (filters[k] for k in parts)]
        ids = len(parts) == 1 and spec.column(parts[0]).type != schema.INT
        if math.prod(len(c) for c in choices) > (MAX_POINT_READS if ids else POINT_READS):
            return None
        return [self._row_key(spec, dict(zip(parts, combo, strict=True)))
                for combo in itertools.product(*[sorted(c) for c in choices])]

    def _key_span(self, spec: TableSpec, partition: str | None, filters: dict[str, Any]) -> tuple[str, str] | None:
        """RowKey bounds [lo, hi) around a list of numbers given for the only key part (outbox seqs)."""
        parts = [k for k in spec.key if k != spec.partition]
        values = filters.get(parts[0]) if partition is not None and len(parts) == 1 else None
        if not values or not isinstance(values, list | tuple | set | frozenset) or \
                spec.column(parts[0]).type != schema.INT:
            return None
        return (self._row_key(spec, {parts[0]: min(values)}),
                self._row_key(spec, {parts[0]: max(values) + 1}))

    def _read_points(self, client: TableClient, partition_key: str, row_keys: list[str],
                     select: list[str] | None) -> list[TableEntity]:
        """The entities of these RowKeys that exist: point queries, `read_concurrency` at a time beyond
        POINT_READS. A page's stored rows are read this way, not by scanning the mailbox's partition
        (quadratic in the mailbox) nor by OR-ing RowKeys in a filter (a partition scan for the service)."""
        def one(row_key: str) -> TableEntity | None:
            try:
                return client.get_entity(partition_key, row_key, select=select)
            except ResourceNotFoundError:
                return None

        if len(row_keys) <= POINT_READS:
            found = [one(key) for key in row_keys]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.read_concurrency) as pool:
                found = list(pool.map(one, row_keys))
        return [entity for entity in found if entity is not None]

    @staticmethod
    def _matches(spec: TableSpec, entity: dict[str, Any], filters: dict[str, Any]) -> bool:
        for name, value in filters.items():
            stored = entity.get(name)
            if isinstance(stored, EntityProperty):  # Int64 properties come back wrapped
                stored = stored.value
            if isinstance(value, list | tuple | set | frozenset):
                if stored not in value:
                    return False
            elif stored != value:
                return False
        return True

    # ------------------------------------------------------------------ primitives
    @contextmanager
    def _transaction(self, partition: str) -> Iterator[_Tx]:
        tx = _Tx()
        yield tx
        ops = dict(tx.ops)
        for suffix, lead in tx.lead.items():  # outbox entries: with the rows when one transaction holds both
            together = lead + ops.get(suffix, [])
            if len(self._batches(together)) == 1:
                ops = {suffix: together, **{k: v for k, v in ops.items() if k != suffix}}
            else:
                self._commit(self._clients[suffix], lead)
        for suffix, table_ops in ops.items():
            self._commit(self._clients[suffix], table_ops)
        for callback in tx.after_commit:
            callback()

    def _record(self, tx: _Tx, user_id: str, changes: list[Any]) -> list[Any]:
        tx.leading = True
        try:
            return super()._record(tx, user_id, changes)
        finally:
            tx.leading = False

    def _allocate(self, tx: _Tx, user_id: str, count: int) -> int:
        """The counter entity `n:` of the user's partition, written with If-Match (or created) in `tx`."""
        client, pk = self._clients["events"], tablekeys.encode_key(user_id)
        row_key = self._row_key(schema.OUTBOX_SEQ, {})
        try:
            current = client.get_entity(pk, row_key)
        except ResourceNotFoundError:
            current = None
        last = (self._value(schema.INT, current["last_seq"]) if current else 0) + count
        entity = self._entity(schema.OUTBOX_SEQ, {"microsoft_user_id": user_id, "last_seq": last})
        if current is None:
            tx.add("events", ("create", entity))  # a concurrent first allocation fails with 409: Conflict
        else:
            tx.add("events", ("update", entity, {"mode": UpdateMode.REPLACE, "etag": current.metadata["etag"],
                                                 "match_condition": MatchConditions.IfNotModified}))
        return last

    @staticmethod
    def _batches(ops: list[Op]) -> list[list[Op]]:
        """Consecutive slices that can each be one entity-group transaction."""
        batches: list[list[Op]] = []
        keys: set[tuple[str, str]] = set()
        size = 0
        for op in ops:
            key = (op[1]["PartitionKey"], op[1]["RowKey"])
            op_size = _op_bytes(op)
            if (not batches or len(batches[-1]) == MAX_BATCH or key in keys or size + op_size > MAX_BATCH_BYTES
                    or key[0] != batches[-1][0][1]["PartitionKey"]):
                batches.append([])
                keys, size = set(), 0
            batches[-1].append(op)
            keys.add(key)
            size += op_size
        return batches

    def _commit(self, client: TableClient, ops: list[Op]) -> None:
        """Submit in transactions of <= 100 ops; the last one (holding the cursor) only after all others."""
        batches = self._batches(ops)
        if len(batches) > 2 and self.parallel_batches > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.parallel_batches) as pool:
                for future in [pool.submit(self._submit, client, b) for b in batches[:-1]]:
                    future.result()
            batches = batches[-1:]
        for batch in batches:
            self._submit(client, batch)

    @staticmethod
    def _submit(client: TableClient, batch: list[Op]) -> None:
        try:
            for attempt in range(RESENDS + 1):
                try:
                    client.submit_transaction(batch)
                    return
                except (ServiceRequestError, ServiceResponseError) as exc:
                    # A pooled connection reset under a POST (the server closed it while it sat idle),
                    # which azure-core does not retry. Sent again on a fresh connection: a batch that did
                    # apply then fails with 409/412/404 (creates, If-Match, deletes: the Conflict below,
                    # the unit is re-read and retried) or is repeated harmlessly (upserts).
                    if attempt == RESENDS:
                        raise Conflict(f"transaction not confirmed: {exc}") from exc
                    time.sleep(0.05 * (attempt + 1))
        except TableTransactionError as exc:
            if exc.status_code in _CONFLICT_STATUS or getattr(exc, "error_code", None) in (
                    "UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound"):
                raise Conflict(str(exc)) from exc
            raise
        except HttpResponseError as exc:
            if exc.status_code in _CONFLICT_STATUS:
                raise Conflict(str(exc)) from exc
            raise

    def _fetch_stored(self, tx: _Tx, spec: TableSpec, partition: str, keys: list[str]) -> dict[str, Stored]:
        kept = spec.names(schema.CONTEXT, schema.MANAGED, schema.META)
        version = ["row_version"] if spec.versioned else []
        select = list(dict.fromkeys([spec.remote_key, *version, "data_hash", "data_blob", *kept]))
        wanted = set(keys)
        filters = {spec.remote_key: keys} if spec.remote_key != spec.partition else {spec.partition: partition}
        stored = {}
        for entity in self._query(spec, partition, filters, select):
            key = entity.get(spec.remote_key)
            if key in wanted:
                columns = {n: self._value(spec.column(n).type, entity.get(n)) for n in kept}
                columns["data_blob"] = entity.get("data_blob")
                stored[key] = Stored(key, entity.get("row_version") or "", entity.get("data_hash") or "", columns,
                                     entity.metadata.get("etag"))
        return stored

    def _write_rows(self, tx: _Tx, spec: TableSpec, partition: str,
                    writes: list[tuple[Mapped, Stored | None]], now: datetime) -> None:
        table = _PLACEMENT[spec.name][0]
        for row, stored in writes:
            if stored is None:
                entity = self._entity(spec, {**row.values, "row_created_at": now, "row_updated_at": now}, row.text)
                tx.add(table, ("create", entity))
                continue
            kept = {k: v for k, v in stored.columns.items() if k != "data_blob"}
            entity = self._entity(spec, {**kept, **row.values, "row_updated_at": now}, row.text)
            tx.add(table, ("update", entity, {"mode": UpdateMode.REPLACE, "etag": stored.etag,
                                              "match_condition": MatchConditions.IfNotModified}))
            if stored.columns.get("data_blob") != entity.get("data_blob"):
                self._delete_blob_later(tx, stored.columns.get("data_blob"))

    def _select(self, spec: TableSpec, partition: str | None, filters: dict[str, Any], tx: _Tx | None = None,
                columns: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        names = list(columns or spec.names())
        select = None
        if columns:
            select = list(dict.fromkeys([*names, *filters]))
            if "data" in names:
                select = None
        rows = [self._decode(spec, e, names) for e in self._query(spec, partition, filters, select, limit)]
        missing = [k for k in spec.key if k not in names]
        if not missing:
            rows.sort(key=lambda r: tuple(r[k] for k in spec.key))
        return rows

    def _delete(self, tx: _Tx, spec: TableSpec, partition: str, filters: dict[str, Any]) -> list[str]:
        select = list(dict.fromkeys([*spec.key, *filters, "PartitionKey", "RowKey"]))
        if spec.replicated:
            select.append("data_blob")
        table = _PLACEMENT[spec.name][0]
        deleted = []
        for entity in self._query(spec, partition, filters, select):
            tx.add(table, ("delete", {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}))
            self._delete_blob_later(tx, entity.get("data_blob"))
            deleted.append(str(entity[spec.key[-1]]))
        return deleted

    def _pages(self, spec: TableSpec, partition: str, bounds: dict[str, str], select: list[str],
               **equal: str) -> Iterator[list[dict[str, Any]]]:
        """The partition's entities of `spec` within RowKey `bounds` (operator -> value, e.g. {"ge": lo,
        "lt": hi}) and with these property values, page by page in RowKey order: what a scan over a
        large partition holds at a time."""
        clauses, params = ["PartitionKey eq @pk"], {"pk": tablekeys.encode_key(partition)}
        for i, (operator, value) in enumerate(bounds.items()):
            clauses.append(f"RowKey {operator} @b{i}")
            params[f"b{i}"] = value
        for i, (name, value) in enumerate(equal.items()):
            clauses.append(f"{name} eq @f{i}")
            params[f"f{i}"] = value
        found = self._client(spec).query_entities(" and ".join(clauses), parameters=params, select=select,
                                                  results_per_page=1000)
        for page in found.by_page():
            entities = list(page)
            if entities:
                yield entities

    def _delete_unseen(self, tx: _Tx, user_id: str, calendar_id: str, round_id: str, after: str | None,
                       limit: int) -> tuple[list[str], str | None]:
        """Streams the calendar's event rows a page at a time (from `after`, a RowKey) and reads the
        round's markers of that page's key range only; the deletes are queued in `tx`."""
        events, seen = schema.EVENTS, schema.SEEN
        prefix = _PLACEMENT[events.name][1]
        marker = self._row_key(seen, {"microsoft_calendar_id": calendar_id, "round_id": round_id,
                                      "microsoft_event_id": ""})
        deleted: list[str] = []
        scan = {"gt": after} if after else {"ge": prefix}
        for page in self._pages(events, user_id, {**scan, "lt": _upper_bound(prefix)},
                                ["PartitionKey", "RowKey", "microsoft_event_id", "data_blob"],
                                microsoft_calendar_id=calendar_id):
            first, last = page[0]["RowKey"][len(prefix):], page[-1]["RowKey"][len(prefix):]
            marked = {m["RowKey"][len(marker):] for markers in self._pages(
                seen, user_id, {"ge": marker + first, "le": marker + last}, ["RowKey"], round_id=round_id)
                      for m in markers}
            for entity in page:
                if entity["RowKey"][len(prefix):] in marked:
                    continue
                tx.add("events", ("delete", {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}))
                self._delete_blob_later(tx, entity.get("data_blob"))
                deleted.append(entity["microsoft_event_id"])
                if len(deleted) >= limit:
                    return deleted, entity["RowKey"]
        return deleted, None

    def _purge_seen(self, user_id: str, calendar_id: str) -> None:
        seen = schema.SEEN
        lo = _PLACEMENT[seen.name][1] + tablekeys.encode_key(calendar_id) + ":"
        for page in self._pages(seen, user_id, {"ge": lo, "lt": _upper_bound(lo)}, ["PartitionKey", "RowKey"],
                                microsoft_calendar_id=calendar_id):
            with suppress(Conflict):  # removed meanwhile by another purge: the next one sweeps the rest
                self._commit(self._clients["events"],
                             [("delete", {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]}) for e in page])

    def _distinct(self, spec: TableSpec, partition: str, column: str, filters: dict[str, Any]) -> set[Any]:
        """Streams the partition's rows of `spec` page by page (equalities filtered by the service)."""
        prefix = _PLACEMENT[spec.name][1]
        equal = {name: value for name, value in filters.items()
                 if name != spec.partition and not isinstance(value, list | tuple | set | frozenset)}
        values: set[Any] = set()
        for page in self._pages(spec, partition, {"ge": prefix, "lt": _upper_bound(prefix)},
                                list(dict.fromkeys([column, *filters])), **equal):
            values.update(self._value(spec.column(column).type, e.get(column)) for e in page
                          if e.get(column) is not None and self._matches(spec, e, filters))
        return values

    def _put(self, tx: _Tx, spec: TableSpec, partition: str, rows: list[dict[str, Any]]) -> None:
        table = _PLACEMENT[spec.name][0]
        for row in rows:
            tx.add(table, ("upsert", self._entity(spec, row), {"mode": UpdateMode.REPLACE}))

    def _set_columns(self, tx: _Tx, spec: TableSpec, partition: str, updates: dict[str, dict[str, Any]]) -> None:
        """Read each entity, change its properties, replace it with If-Match (a None removes the property;
        the data properties are sent back as they were read)."""
        client, table = self._client(spec), _PLACEMENT[spec.name][0]
        for key, values in updates.items():
            row_key = self._row_key(spec, {spec.remote_key: key, spec.partition: partition})
            try:
                entity = client.get_entity(tablekeys.encode_key(partition), row_key)
            except ResourceNotFoundError as exc:
                raise Conflict(f"{spec.name} {key} is gone") from exc
            etag = entity.metadata["etag"]
            changed = self._entity(spec, {spec.partition: partition, spec.remote_key: key, **values})
            entity = {k: v for k, v in entity.items() if k not in values}
            entity.update(changed)
            tx.add(table, ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                                              "match_condition": MatchConditions.IfNotModified}))

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Leases are entities of the meta table; ETags make the take a compare-and-set."""
        meta = self._clients["meta"]
        row_key = tablekeys.encode_key(name)
        for _ in range(3):  # a lease released between our reads: look again
            now_ms = int(time.time() * 1000)
            entity = {"PartitionKey": "lease", "RowKey": row_key, "owner": owner,
                      "expires_at_ms": EntityProperty(now_ms + int(ttl_seconds * 1000), EdmType.INT64)}
            try:
                meta.create_entity(entity)
                return True
            except ResourceExistsError:
                pass
            try:
                current = meta.get_entity("lease", row_key)
            except ResourceNotFoundError:
                continue
            expires = current["expires_at_ms"]
            expires = int(expires.value if isinstance(expires, EntityProperty) else expires)
            if current["owner"] != owner and expires >= now_ms:
                return False
            try:
                meta.update_entity(entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                   match_condition=MatchConditions.IfNotModified)
                return True
            except ResourceNotFoundError:
                continue
            except HttpResponseError as exc:
                if exc.status_code == 412:  # someone else took it first
                    return False
                raise
        return False

    def release_lease(self, name: str, owner: str) -> None:
        meta = self._clients["meta"]
        row_key = tablekeys.encode_key(name)
        try:
            current = meta.get_entity("lease", row_key)
            if current["owner"] == owner:
                meta.delete_entity("lease", row_key, etag=current.metadata["etag"],
                                   match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, HttpResponseError):
            pass  # gone, or taken over after expiry: nothing of ours to release

    def _claim_flow(self, key: str, expires_at_ms: int) -> bool:
        """Insert (never upsert): of concurrent callers exactly one creates the entity, the others get 409."""
        try:
            self._clients["meta"].create_entity({
                "PartitionKey": FLOW_PARTITION, "RowKey": tablekeys.encode_key(key), "flow": "used",
                "expires_at_ms": EntityProperty(expires_at_ms, EdmType.INT64)})
        except ResourceExistsError:
            return False
        return True

    def _sweep_flows(self, now_ms: int) -> int:
        meta = self._clients["meta"]
        expired = meta.query_entities("PartitionKey eq @pk and expires_at_ms lt @now", select=["RowKey"],
                                      parameters={"pk": FLOW_PARTITION, "now": now_ms})  # int64: "L" suffix
        removed = 0
        for entity in expired:
            with suppress(ResourceNotFoundError):
                meta.delete_entity(FLOW_PARTITION, entity["RowKey"])
                removed += 1
        return removed

    def _count(self, spec: TableSpec, partition: str | None) -> int:
        filters = {spec.partition: partition} if partition else {}
        return len(self._query(spec, partition, filters, ["RowKey"] + ([spec.partition] if partition else [])))

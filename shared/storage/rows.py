"""Row semantics shared by every backend: mapping Graph JSON to a row, versions, change detection.

Pure functions and small records, no I/O: the repository (`engine.py`) decides with them which
incoming rows are written, and the SQL backends render the same newer-and-different rule.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from shared.storage import schema, textsafety
from shared.storage.schema import (
    TableSpec,
)
from shared.storage.textsafety import TextRules

log = logging.getLogger("shared.storage")


def utcnow() -> datetime:
    return datetime.now(UTC)


def canonical_json(data: object) -> str:
    """One text per JSON value (sorted keys, compact, UTF-8), so stored data can be compared as
    text or digest. orjson: this runs once per row on the bulk-write path, 4x faster than json
    (`textsafety.dumps` falls back to json for the text orjson refuses)."""
    return textsafety.dumps(data)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class Mapped:
    """An incoming row: the column values this write sets, and its data."""

    key: str
    values: dict[str, Any]  # key, derived, context and explicitly given managed columns (not meta, not data)
    data: dict[str, Any]
    text: str
    digest: str
    version: str
    compared: tuple[str, ...] = ()  # non-derived columns whose change alone is a real change


@dataclass
class Stored:
    """What change detection needs to know about a stored row."""

    key: str
    version: str
    digest: str
    columns: dict[str, Any] = field(default_factory=dict)  # context/managed/meta values as stored
    etag: str | None = None  # Table Storage: the entity's ETag, for If-Match


COUNTER_ROUNDS = 20


def change_version(data: dict[str, Any] | None) -> str:
    """The version an outbound event carries (and its de-dup id hashes): changeKey, else lastModified/etag."""
    if not data:
        return ""
    return str(data.get("changeKey") or data.get("lastModifiedDateTime") or data.get("@odata.etag") or "")



def is_older(new_version: str, stored_version: str) -> bool:
    """Versions are sortable texts; an unknown ('') version is never older nor newer."""
    return bool(new_version) and bool(stored_version) and new_version < stored_version


def should_write(stored: Stored, row: Mapped) -> bool:
    """Newer-or-equal AND different: older versions never overwrite, unchanged rows are not written."""
    if is_older(row.version, stored.version):
        return False
    if row.digest != stored.digest:
        return True
    return any(stored.columns.get(name) != row.values.get(name) for name in row.compared)


def newer_and_different_sql(spec: TableSpec, compared: Iterable[str], stored: str, new: str) -> str:
    """`should_write` rendered for SQL `ON CONFLICT ... DO UPDATE ... WHERE` (identifiers are spec names)."""
    different = [f"{stored}.data IS DISTINCT FROM {new}.data"]
    different += [f"{stored}.{name} IS DISTINCT FROM {new}.{name}" for name in compared]
    clause = f"({' OR '.join(different)})"
    if spec.versioned:
        clause = (f"NOT (COALESCE({new}.row_version, '') <> '' AND COALESCE({stored}.row_version, '') <> '' "
                  f"AND {new}.row_version < {stored}.row_version) AND {clause}")
    return clause


def row_key(spec: TableSpec, data: dict[str, Any], context: dict[str, Any]) -> str:
    """The remote id of an incoming row (the caller's, else the JSON's `id`)."""
    if not isinstance(data, dict):
        raise TypeError(f"{spec.name}: a row's data must be a JSON object, got {type(data).__name__}")
    key = context.get(spec.remote_key) or data.get("id")
    if not key:
        raise ValueError(f"{spec.name}: row without id")
    if not isinstance(key, str):
        raise TypeError(f"{spec.name}: a row's id must be a string, got {type(key).__name__}")
    return key


def map_row(spec: TableSpec, data: dict[str, Any], context: dict[str, Any],
            managed: dict[str, Any] | None = None, rules: TextRules = textsafety.AS_IS) -> Mapped:
    """Graph JSON + caller context -> the values of one row, from the spec; text the backend
    cannot hold is degraded and listed on the row (`textsafety`)."""
    key = row_key(spec, data, context)
    data, text, degraded = textsafety.clean_data(data, rules)
    derived = schema.derive(spec, data)
    degraded = sorted(f"data:{path}" for path in degraded) + [f"column:{name}"
                                                        for name in textsafety.clean_columns(derived, rules)]
    if degraded:
        data = {**data, textsafety.DEGRADED_KEY: degraded}
        text = canonical_json(data)
    values: dict[str, Any] = {spec.remote_key: key, **derived}
    compared = []
    for name, value in {**context, **(managed or {})}.items():
        if name != spec.remote_key:
            spec.column(name)
            values[name] = value
            compared.append(name)
    return Mapped(key, values, data, text, digest(text), values.get("row_version") or "", tuple(compared))


@dataclass
class Incoming:
    """An item to upsert whose row is mapped on demand (`map`, once).

    Key and version are read up front: de-duplication and the key order of writes need only
    them. The rest of the mapping (schema columns, canonical JSON; ~20 us a row) can then run
    chunk by chunk inside the transaction, while the database writes the previous chunk
    (`Repository.map_ahead`, `_upsert_ordered`).
    """

    spec: TableSpec
    data: dict[str, Any]
    context: dict[str, Any]
    managed: dict[str, Any] | None
    key: str
    version: str  # what map_row's row_version will be (a derived column, never given by the caller)
    rules: TextRules = textsafety.AS_IS
    row: Mapped | None = None
    error: str | None = None  # why the row could not be mapped (it is then left out of the write)

    def map(self) -> Mapped:
        if self.row is None:
            self.row = map_row(self.spec, self.data, self.context, self.managed, self.rules)
        return self.row


def incoming(spec: TableSpec, data: dict[str, Any], context: dict[str, Any],
             managed: dict[str, Any] | None = None, rules: TextRules = textsafety.AS_IS) -> Incoming:
    key = row_key(spec, data, context)
    version = str(schema.derive_one(spec, "row_version", data) or "") if spec.versioned else ""
    return Incoming(spec, data, context, managed, key, version, rules)


def map_batch(batch: Iterable[Incoming]) -> list[Mapped]:
    """The batch's rows mapped; a row that cannot be mapped is left out (its `error` says why)
    instead of failing the write of every other row."""
    mapped = []
    for item in batch:
        if item.error is not None:
            continue
        try:
            mapped.append(item.map())
        except Exception as exc:
            item.error = f"{type(exc).__name__}: {exc}"[:500]
            log.error("%s row %.200r left out: it cannot be stored (%s)", item.spec.name, item.key, item.error)
    return mapped


def dedupe(rows: Iterable[Incoming]) -> list[Incoming]:
    """One row per key: the later one wins unless it is older (a page may repeat an item)."""
    kept: dict[str, Incoming] = {}
    for row in rows:
        previous = kept.get(row.key)
        if previous is None or not is_older(row.version, previous.version):
            kept[row.key] = row
    return list(kept.values())


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)



@dataclass(frozen=True)
class PreparedEvents:
    """A page's events already mapped to rows (`Repository.prepare_events`), so the mapping can run
    before the page's transaction, e.g. while the previous page is stored."""

    user_id: str
    calendar_id: str
    rows: list[Incoming]
    removed: frozenset[str]  # ids of items carrying `@removed`

"""`import-webhookdb`: a WebhookDB replica of Outlook calendars moved into this product's tables.

Per user, in this order (each step idempotent, so a run that stopped is simply run again):

1. the refresh token is decrypted with WebhookDB's key and re-encrypted with this product's
   AES-GCM cipher; a token that does not decrypt is reported and the user is skipped;
2. the user row (WebhookDB's `data`: the client's own fields), its calendars and their events
   are upserted through the repository, then given WebhookDB's `row_created_at`;
   WebhookDB's subscription id and delta URLs are not carried over (they point at
   WebhookDB and at its sync state);
3. one full reconciling sync with a new subscription is queued: the round deletes every
   imported row Graph no longer returns, under the ids this account now uses, so no event
   is stored twice whether ids stay mutable (`keep_mutable_ids`) or become immutable;
4. the account is marked linked and imported; later runs skip it (a second run changes nothing).

A user that is already linked here without having been imported is left alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import sql

    from shared.config import Settings

log = logging.getLogger(__name__)

IMPORTED = "webhookdb"
EVENT_BATCH = 1000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SourceTables:
    """WebhookDB names each table per integration, e.g. `microsoft_calendar_user_v1_8a3f`."""

    users: str
    calendars: str
    events: str

    def __post_init__(self) -> None:
        for name in (self.users, self.calendars, self.events):
            parts = name.split(".")
            if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
                raise ValueError(f"not a table name: {name!r} (use name or schema.name)")


@dataclass(frozen=True)
class SourceRow:
    remote_id: str
    row_created_at: datetime | None
    data: dict[str, Any]
    calendar_id: str = ""
    encrypted_refresh_token: str | None = None


@dataclass
class UserResult:
    user_id: str
    status: str  # imported | already imported | skipped | failed
    detail: str = ""
    calendars: int = 0
    events: int = 0
    events_skipped: int = 0


@dataclass
class Summary:
    results: list[UserResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[UserResult]:
        return [r for r in self.results if r.status == "failed"]

    def lines(self) -> list[str]:
        imported = [r for r in self.results if r.status == "imported"]
        out = [f"users: {len(self.results)}, imported: {len(imported)}, already imported: "
               f"{self.count('already imported')}, skipped: {self.count('skipped')}, failed: {len(self.failed)}",
               f"calendars: {sum(r.calendars for r in imported)}, events: {sum(r.events for r in imported)}, "
               f"events of unknown calendars left out: {sum(r.events_skipped for r in imported)}"]
        out += [f"  {r.status} {r.user_id}: {r.detail}" for r in self.results
                if r.status in ("failed", "skipped")]
        return out


class WebhookDbSource:
    """Reads WebhookDB's three tables in one read-only, repeatable-read transaction."""

    def __init__(self, dsn: str, tables: SourceTables) -> None:
        import psycopg

        self.tables = tables
        self.conn = psycopg.connect(dsn, autocommit=False)
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()

    def __enter__(self) -> WebhookDbSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _table(name: str) -> Any:
        from psycopg import sql

        return sql.Identifier(*name.split("."))

    def _rows(self, query: sql.Composed | sql.SQL | str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def users(self) -> list[SourceRow]:
        from psycopg import sql

        query = sql.SQL("SELECT microsoft_user_id, row_created_at, encrypted_refresh_token, data FROM {} "
                        "ORDER BY microsoft_user_id").format(self._table(self.tables.users))
        return [SourceRow(uid, created, data or {}, encrypted_refresh_token=token)
                for uid, created, token, data in self._rows(query, ())]

    def calendars(self, user_id: str) -> list[SourceRow]:
        from psycopg import sql

        query = sql.SQL("SELECT microsoft_calendar_id, row_created_at, data FROM {} WHERE microsoft_user_id = %s "
                        "ORDER BY microsoft_calendar_id").format(self._table(self.tables.calendars))
        return [SourceRow(cid, created, {**(data or {}), "id": cid}) for cid, created, data in
                self._rows(query, (user_id,))]

    def events(self, user_id: str, batch: int = EVENT_BATCH) -> Iterator[list[SourceRow]]:
        """The user's events in batches (a server-side cursor: memory stays bounded)."""
        from psycopg import sql

        query = sql.SQL("SELECT microsoft_event_id, microsoft_calendar_id, row_created_at, data FROM {} "
                        "WHERE microsoft_user_id = %s ORDER BY microsoft_calendar_id, microsoft_event_id"
                        ).format(self._table(self.tables.events))
        with self.conn.cursor(name="whdb_events") as cur:
            cur.itersize = batch
            cur.execute(query, (user_id,))
            while rows := cur.fetchmany(batch):
                yield [SourceRow(eid, created, {**(data or {}), "id": eid}, calendar_id=cid or "")
                       for eid, cid, created, data in rows]


def _created(rows: list[SourceRow]) -> dict[str, datetime]:
    return {r.remote_id: r.row_created_at.astimezone(UTC) for r in rows if r.row_created_at is not None}


def import_user(settings: Settings | None, source: WebhookDbSource, row: SourceRow, key: bytes, *,
                keep_mutable_ids: bool = False) -> UserResult:
    """Steps 1-4 of the module docstring for one user; never raises for that user's bad token."""
    from shared.auth import deps
    from shared.graph.factory import MUTABLE_IDS
    from shared.importer.webhookdb_crypto import WebhookDbDecryptError, decrypt
    from shared.queues.messages import SyncRequest
    from shared.storage import schema

    user_id = row.remote_id
    repo = deps.repository(settings)
    account = repo.get_account(user_id)
    extra: dict[str, Any] = dict((account.extra if account else None) or {})
    if extra.get("imported_from") == IMPORTED:
        return UserResult(user_id, "already imported")
    if account is not None:
        return UserResult(user_id, "skipped", f"already linked here ({account.status}); not overwritten")
    if not row.encrypted_refresh_token:
        return UserResult(user_id, "failed", "no refresh token stored in WebhookDB")
    try:
        refresh_token = decrypt(key, row.encrypted_refresh_token)
    except WebhookDbDecryptError as exc:
        return UserResult(user_id, "failed", f"refresh token not readable: {exc}")

    data = {k: v for k, v in row.data.items() if k not in ("refresh_token", "encrypted_refresh_token")}
    repo.upsert_user(user_id, data, encrypted_refresh_token=deps.cipher(settings).encrypt(refresh_token, user_id))
    repo.keep_created_at(schema.USERS.name, user_id, _created([row]))
    calendars = source.calendars(user_id)
    repo.upsert_calendars(user_id, [c.data for c in calendars])
    repo.keep_created_at(schema.CALENDARS.name, user_id, _created(calendars))
    known = {c.remote_id for c in calendars}
    result = UserResult(user_id, "imported", calendars=len(calendars))
    for batch in source.events(user_id):
        kept = [e for e in batch if e.calendar_id in known]
        result.events_skipped += len(batch) - len(kept)
        by_calendar: dict[str, list[SourceRow]] = {}
        for event in kept:
            by_calendar.setdefault(event.calendar_id, []).append(event)
        for calendar_id, events in by_calendar.items():
            repo.upsert_events(user_id, calendar_id, [e.data for e in events])
        repo.keep_created_at(schema.EVENTS.name, user_id, _created(kept))
        result.events += len(kept)

    # The sync is queued before the account is marked: a run stopped in between queues it again.
    deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
    extra.update({"imported_from": IMPORTED, "imported_at": datetime.now(UTC).isoformat()})
    if keep_mutable_ids:
        extra["event_ids"] = MUTABLE_IDS
    repo.update_account(user_id, status="linked", status_reason=None, mode="delegated", extra=extra)
    return result


def import_all(settings: Settings | None, source: WebhookDbSource, users: list[SourceRow], key: bytes, *,
               keep_mutable_ids: bool = False, progress: Callable[[UserResult], None] | None = None) -> Summary:
    """These users of the source, one after the other; one user's failure never stops the others."""
    summary = Summary()
    for row in users:
        result = import_user(settings, source, row, key, keep_mutable_ids=keep_mutable_ids)
        if result.status == "failed":
            log.warning("import-webhookdb: user %s not imported: %s", result.user_id, result.detail)
        summary.results.append(result)
        if progress is not None:
            progress(result)
    return summary

"""Sync cursors and pages: where a round is, and the page written together with its cursor."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime
from typing import Any

from shared.storage.engine import RepositoryCore, TxT
from shared.storage.rows import (
    PreparedEvents,
    dedupe,
    map_batch,
    utc,
    utcnow,
)
from shared.storage.schema import (
    CALENDARS,
    CURSORS,
    EVENTS,
    SEEN,
)
from shared.storage.types import (
    ChangedRow,
    PageResult,
    SyncCursor,
)

log = logging.getLogger("shared.storage")


class SyncRounds(RepositoryCore[TxT]):
    """A calendar's cursor, its pages written with it in one unit, and the end of a full round."""

    def prepare_events(self, user_id: str, calendar_id: str, events: list[dict[str, Any]]) -> PreparedEvents:
        """A page's events mapped to rows outside any transaction, for `save_page`.

        Mapping is Python work (~20 us a row); done in the thread that fetched the page, it runs
        while the previous page's transaction waits on the database instead of after it.
        Items carrying `@removed` are removals, as in `save_page`.
        """
        rows = self._event_rows(user_id, calendar_id, [e for e in events if "@removed" not in e])
        map_batch(rows)
        return PreparedEvents(user_id, calendar_id, rows,
                              frozenset(e["id"] for e in events if "@removed" in e and e.get("id")))

    # ------------------------------------------------------------------ sync cursors and pages
    def get_cursor(self, user_id: str, calendar_id: str) -> SyncCursor | None:
        row = self._get(CURSORS, user_id, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})
        return SyncCursor(**row) if row else None

    def save_page(self, user_id: str, calendar_id: str, *, events: list[dict[str, Any]] | PreparedEvents,
                  removed_ids: list[str], next_link: str | None, delta_link: str | None,
                  window: tuple[datetime, datetime],
                  full_round: bool = False) -> PageResult:
        """Upsert a page, delete its removed ids (in this calendar), record the changes in the outbox
        and store the cursor, in one unit.

        While a round goes on the cursor holds next_link (and keeps the previous delta_link); the
        delta_link replaces both when the round ends. In a full round the page's ids are remembered
        for `finish_full_round`. Items carrying `@removed` are treated as removed ids. `events` may
        come mapped already (`prepare_events` for this calendar).
        """
        if isinstance(events, PreparedEvents):
            if (events.user_id, events.calendar_id) != (user_id, calendar_id):
                raise ValueError("save_page: the events were prepared for another calendar")
            removed, rows = set(removed_ids) | events.removed, events.rows
        else:
            removed = set(removed_ids) | {e["id"] for e in events if "@removed" in e and e.get("id")}
            rows = self._event_rows(user_id, calendar_id, [e for e in events if "@removed" not in e])
        cursor_key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: TxT) -> PageResult:
            now = utcnow()
            cursor = self._get(CURSORS, user_id, cursor_key, tx) or {}
            round_id = None
            if full_round:
                round_id = cursor.get("round_id") if cursor.get("full_round") else None
                round_id = round_id or uuid.uuid4().hex
            changes = self._upsert(tx, EVENTS, user_id, rows)
            gone = sorted(removed - {r.key for r in rows})
            if gone:
                deleted = self._delete(tx, EVENTS, user_id, {**cursor_key, "microsoft_event_id": gone})
                changes += [ChangedRow(EVENTS.name, i, "deleted", None) for i in deleted]
            if full_round and rows:
                self._put(tx, SEEN, user_id, [{**cursor_key, "round_id": round_id, "microsoft_event_id": r.key}
                                              for r in dedupe(rows)])
            self._record(tx, user_id, changes)  # before the cursor (Table Storage commits in this order)
            kept_delta = delta_link if delta_link else cursor.get("delta_link")
            self._put(tx, CURSORS, user_id, [{
                **cursor_key, "window_start": utc(window[0]), "window_end": utc(window[1]),
                "next_link": next_link, "delta_link": kept_delta,
                "full_round": bool(full_round or cursor.get("full_round")),
                "round_id": round_id or cursor.get("round_id"), "updated_at": now}])
            if delta_link:
                self._mirror_delta_url(tx, user_id, calendar_id, kept_delta)
            return PageResult(changes, round_id)

        result = self._atomic(user_id, unit)
        skipped = sorted({r.key for r in rows if r.error is not None})
        return dataclasses.replace(result, skipped=skipped) if skipped else result

    def finish_full_round(self, user_id: str, calendar_id: str) -> list[str]:
        """Delete the calendar's local rows no page of the round wrote; end the round. Returns their ids.

        In units of `reconcile_chunk` rows, each deleted with its outbox entries; the unit that finds
        fewer also ends the round in its cursor, so a crash in between leaves a round that the next
        sync finishes (rows deleted already are not found again). Memory stays flat however large
        the calendar: the database picks the unseen rows (`_delete_unseen`); only the deleted ids
        (the rows that vanished from Graph) are returned. The round's markers are dropped once the
        round has ended (`_purge_seen`); markers a crash leaves there belong to no live round (a new
        round has a new id) and go with the next round's.
        """
        cursor_key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}
        deleted: list[str] = []
        after: str | None = None
        ended = False

        def unit(tx: TxT) -> tuple[list[str], str | None, bool]:
            cursor = self._get(CURSORS, user_id, cursor_key, tx)
            if not cursor or not cursor.get("round_id"):
                return [], None, False
            gone, resume = self._delete_unseen(tx, user_id, calendar_id, cursor["round_id"], after,
                                               self.reconcile_chunk)
            self._record(tx, user_id, [ChangedRow(EVENTS.name, i, "deleted", None) for i in gone])
            if len(gone) >= self.reconcile_chunk:
                return gone, resume, False
            self._put(tx, CURSORS, user_id, [{**cursor, "full_round": False, "round_id": None,
                                              "updated_at": utcnow()}])
            return gone, None, True

        while True:
            gone, after, ended = self._atomic(user_id, unit)
            deleted += gone
            if ended or not gone:
                break
        if ended:
            self._purge_seen(user_id, calendar_id)
        return deleted

    def clear_cursor(self, user_id: str, calendar_id: str) -> None:
        """Forget the calendar's cursor (its next round is full); its round markers go after it."""
        scope = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: TxT) -> None:
            self._delete(tx, CURSORS, user_id, scope)
            self._mirror_delta_url(tx, user_id, calendar_id, None)

        self._atomic(user_id, unit)
        self._purge_seen(user_id, calendar_id)  # after the cursor: a crash in between leaves no round to finish

    def _mirror_delta_url(self, tx: TxT, user_id: str, calendar_id: str, delta_link: str | None) -> None:
        """Copy the cursor's deltaLink to the calendar row's `delta_url` (WebhookDB's published column).

        The cursor stays the source of truth; the column only mirrors it, so writing it neither
        counts as a change of the calendar (no row_updated_at, no outbox entry) nor is read back.
        """
        rows = self._select(CALENDARS, user_id, {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id},
                            tx, columns=["microsoft_calendar_id", "delta_url"])
        if rows and rows[0]["delta_url"] != delta_link:
            self._set_columns(tx, CALENDARS, user_id, {calendar_id: {"delta_url": delta_link}})

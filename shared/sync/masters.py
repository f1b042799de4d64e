"""Series masters: fetched once, stored beside their occurrences, dropped with the last one.

Calendar view (and its delta) never returns a `seriesMaster`, only occurrences
and exceptions carrying `seriesMasterId`; the recurrence pattern lives on the
master. So for each series seen in a round we GET `/events/{seriesMasterId}`
once and store it in the same calendar (unchanged masters are not rewritten).
Not only when one of its instances changed: a master edit need not change any
instance row (a new subject while every in-window instance is an exception with
its own, a recurrence end moved outside the window); an incremental round lists
an instance because its series changed, and a full round -- a listed calendar,
a resync -- has no other signal. A master no occurrence references any more
is deleted (`reconcile`), which keeps the events table equal to "window items
+ their masters".
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.graph import GraphError
from shared.graph.paths import segment
from shared.sync.context import SyncContext
from shared.sync.mapping import PageItems, event_row

log = logging.getLogger("shared.sync")
MASTER = "seriesMaster"


def fetch(ctx: SyncContext, ids: set[str]) -> list[dict[str, Any]]:
    """GET each master (up to the mailbox's in-flight cap at once); a vanished series is skipped."""
    def one(master_id: str) -> dict[str, Any] | None:
        try:
            return ctx.graph.get(f"{ctx.prefix}/events/{segment(master_id)}")
        except GraphError as exc:
            if exc.status == 404:
                return None  # deleted meanwhile: its occurrences' removals follow in the next round
            raise

    ordered = sorted(ids)
    if len(ordered) <= 1:
        found = [one(i) for i in ordered]
    else:
        workers = max(1, min(len(ordered), int(ctx.settings.max_requests_per_mailbox)))
        with ThreadPoolExecutor(workers, thread_name_prefix="masters") as pool:
            found = list(pool.map(one, ordered))
    return [event_row(m) for m in found if m and m.get("type", MASTER) == MASTER]


class RoundMasters:
    """Masters of one calendar during one round of pages."""

    def __init__(self, ctx: SyncContext, calendar_id: str, full_round: bool) -> None:
        self.ctx, self.calendar_id, self.full_round = ctx, calendar_id, full_round
        self.fetched: set[str] = set()
        self.referenced: set[str] = set()
        self._stored: dict[str, dict[str, Any]] | None = None

    def _stored_masters(self) -> dict[str, dict[str, Any]]:
        if self._stored is None:
            rows = _select(self.ctx, self.calendar_id, {"type": MASTER}, ["microsoft_event_id", "data"])
            self._stored = {r["microsoft_event_id"]: r["data"] for r in rows}
        return self._stored

    def after_page(self, items: PageItems, next_link: str | None, delta_link: str | None) -> None:
        """Fetch and store the masters of the series this page lists (each once a round).

        Not only when an instance row changed: a master edit may leave every in-window instance
        as it was (a new subject while each instance is an exception with its own, a recurrence
        end moved outside the window). An incremental round lists an instance only because its
        series changed; a full round (a listed calendar, a resync after 410) has no other signal.
        """
        if not items.series_ids:
            return
        self.referenced |= items.series_ids
        want = items.series_ids - self.fetched
        if not want:
            return
        masters = fetch(self.ctx, want)
        self.fetched |= want
        self._write(masters, next_link, delta_link)

    def finish(self, delta_link: str | None) -> None:
        """Full round: mark stored masters still referenced as seen, so the reconciliation keeps them.

        (Every referenced master is fetched in `after_page` now; this is the safety net for one that
        was referenced but not written in this process, e.g. by a page stored before a crash.)"""
        unfetched = sorted(self.referenced - self.fetched)
        if not self.full_round or not unfetched:
            return
        stored = self._stored_masters()
        self._write([stored[m] for m in unfetched if m in stored], None, delta_link)

    def _write(self, masters: list[dict[str, Any]], next_link: str | None, delta_link: str | None) -> None:
        """Store masters (changed rows reach the outbox with the write); a full round marks them seen."""
        if not masters:
            return
        ctx = self.ctx
        if self.full_round:
            ctx.repo.save_page(ctx.user_id, self.calendar_id, events=masters, removed_ids=[], next_link=next_link,
                               delta_link=delta_link, window=ctx.window, full_round=True)
        else:
            ctx.repo.upsert_events(ctx.user_id, self.calendar_id, masters)


def _select(ctx: SyncContext, calendar_id: str, filters: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """A narrow read of the calendar's event rows (a few columns, not every row's JSON)."""
    from shared.storage.schema import EVENTS

    return ctx.repo.select(EVENTS.name, ctx.user_id, columns, microsoft_calendar_id=calendar_id, **filters)


def reconcile(ctx: SyncContext, calendar_id: str) -> None:
    """Delete masters no stored instance references; fetch referenced masters we lack (after a crash)."""
    rows = _select(ctx, calendar_id, {}, ["microsoft_event_id", "type", "series_master_id"])
    masters = {r["microsoft_event_id"] for r in rows if r["type"] == MASTER}
    referenced = {r["series_master_id"] for r in rows if r["series_master_id"] and r["type"] != MASTER}
    if masters - referenced:
        ctx.repo.delete_events(ctx.user_id, masters - referenced)
    if referenced - masters:
        ctx.repo.upsert_events(ctx.user_id, calendar_id, fetch(ctx, referenced - masters))

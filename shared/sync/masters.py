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
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.graph import GraphError
from shared.graph.paths import segment
from shared.sync.context import SyncContext
from shared.sync.mapping import PageItems, event_row

log = logging.getLogger("shared.sync")
MASTER = "seriesMaster"
INSTANCE_TYPES = ("occurrence", "exception")  # the event types that carry seriesMasterId


def fetch(ctx: SyncContext, ids: set[str]) -> list[dict[str, Any]]:
    """GET each master (up to the mailbox's in-flight cap at once); a vanished series is skipped."""
    def one(master_id: str) -> dict[str, Any] | None:
        try:
            master: dict[str, Any] = ctx.graph.get(f"{ctx.prefix}/events/{segment(master_id)}")
            return master
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
    """Masters of one calendar during one round of pages.

    The series fetched so far are remembered in a bounded set (the most recent `remembered`), so a
    round's memory does not grow with the mailbox: a series met again after it was forgotten is
    fetched once more (an unchanged master is not rewritten), which costs a request, not correctness.
    """

    remembered = 10_000

    def __init__(self, ctx: SyncContext, calendar_id: str, full_round: bool) -> None:
        self.ctx, self.calendar_id, self.full_round = ctx, calendar_id, full_round
        self.fetched: OrderedDict[str, None] = OrderedDict()

    def after_page(self, items: PageItems, next_link: str | None, delta_link: str | None) -> None:
        """Fetch and store the masters of the series this page lists (each once a round, as far as
        `remembered` reaches).

        Not only when an instance row changed: a master edit may leave every in-window instance
        as it was (a new subject while each instance is an exception with its own, a recurrence
        end moved outside the window). An incremental round lists an instance only because its
        series changed; a full round (a listed calendar, a resync after 410) has no other signal.
        A full round marks each master it writes as seen; one referenced only by pages stored
        before a crash is fetched again by `reconcile` after the round.
        """
        if not items.series_ids:
            return
        want = {i for i in items.series_ids if i not in self.fetched}
        for known in items.series_ids - want:
            self.fetched.move_to_end(known)
        if not want:
            return
        masters = fetch(self.ctx, want)
        for master_id in sorted(want):
            self.fetched[master_id] = None
        while len(self.fetched) > self.remembered:
            self.fetched.popitem(last=False)
        self._write(masters, next_link, delta_link)

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

    rows: list[dict[str, Any]] = ctx.repo.select(EVENTS.name, ctx.user_id, columns, microsoft_calendar_id=calendar_id,
                                                 **filters)
    return rows


def reconcile(ctx: SyncContext, calendar_id: str) -> None:
    """Delete masters no stored instance references; fetch referenced masters we lack (after a crash).

    Reads the series ids only (the calendar's masters, the distinct series its instances name),
    not a row per event, so memory follows the number of series, not of events."""
    from shared.storage.schema import EVENTS

    masters = {r["microsoft_event_id"] for r in _select(ctx, calendar_id, {"type": MASTER}, ["microsoft_event_id"])}
    referenced: set[str] = ctx.repo.distinct(EVENTS.name, ctx.user_id, "series_master_id",
                                             microsoft_calendar_id=calendar_id, type=list(INSTANCE_TYPES))
    if masters - referenced:
        ctx.repo.delete_events(ctx.user_id, masters - referenced)
    if referenced - masters:
        ctx.repo.upsert_events(ctx.user_id, calendar_id, fetch(ctx, referenced - masters))

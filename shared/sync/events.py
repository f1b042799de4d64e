"""Which way each calendar's events are read, and the round of one calendar a notification asks for.

- The primary calendar: `calendarView/delta` in the window (v1.0 documents it).
- Other calendars: `calendars/{id}/calendarView/delta` (DELTA_OTHER_CALENDARS=auto or
  true). With `auto`, an account whose Graph answers that the segment is not
  supported (400/404 naming the segment) is remembered on the account
  (`extra.delta_other_calendars`, shown by status) and its other calendars are
  listed in full every sync instead, their missing rows deleted (a reconciling
  round; unchanged rows are not rewritten, so only real changes reach the outbound
  queue). `false` always lists.
- A calendar's notification (`sync_one_calendar`) runs that calendar's round only;
  the calendar list is read first when it is older than CALENDAR_LIST_MAX_AGE_MINUTES
  or does not know the calendar. Calendars the list shows for the first time are
  subscribed (`on_listed`, before their events are read: a change made in between is
  then notified, not lost) and get their first round in the same sync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.graph import GraphError
from shared.graph.paths import segment
from shared.storage.types import AccountState
from shared.sync.context import SyncContext
from shared.sync.delta import Source, sync_calendar
from shared.sync.window import graph_time

log = logging.getLogger("shared.sync")
DELTA_FLAG = "delta_other_calendars"  # key in the account's `extra`


def delta_other_calendars(settings: Settings, account: AccountState | None) -> tuple[bool, bool]:
    """(use delta for non-default calendars, detect an unsupported segment) for this account."""
    mode = str(settings.delta_other_calendars).lower()
    if mode == "auto":
        flag = ((getattr(account, "extra", None) or {}).get(DELTA_FLAG)) or {}
        return not (isinstance(flag, dict) and flag.get("supported") is False), True
    return mode == "true", False


def source_for(ctx: SyncContext, calendar: dict[str, Any]) -> Source:
    window = {"startDateTime": graph_time(ctx.window[0]), "endDateTime": graph_time(ctx.window[1])}
    name = calendar.get("name") or calendar["id"][:12]
    if calendar.get("isDefaultCalendar"):
        return Source(f"{ctx.prefix}/calendarView/delta", window, delta=True, label=f"{name} (delta)")
    path = f"{ctx.prefix}/calendars/{segment(calendar['id'])}/calendarView"
    if ctx.delta_other:
        return Source(f"{path}/delta", window, delta=True, label=f"{name} (delta)")
    return Source(path, window, delta=False, label=f"{name} (listing)")


def is_unsupported_segment(exc: GraphError) -> bool:
    """Graph's answer to a path it does not serve: 400/404 'Resource not found for the segment ...'."""
    return exc.status in (400, 404) and "segment" in (exc.message or "").lower()


def _remember_no_delta(ctx: SyncContext, exc: GraphError) -> None:
    account = ctx.repo.get_account(ctx.user_id)
    extra = dict((account.extra if account else None) or {})
    extra[DELTA_FLAG] = {"supported": False, "detected_at": time.time(), "error": f"{exc.status} {exc.message}"[:300]}
    ctx.repo.update_account(ctx.user_id, extra=extra)
    ctx.delta_other = False
    log.warning("sync %s: Graph does not serve calendarView/delta for non-default calendars (%s %s); "
                "listing them in full from now on", ctx.progress.label or ctx.user_id, exc.status, exc.message)


def sync_calendar_events(ctx: SyncContext, calendar: dict[str, Any]) -> None:
    """One calendar's round, falling back to a listing when `auto` finds delta unsupported."""
    source = source_for(ctx, calendar)
    try:
        sync_calendar(ctx, calendar["id"], source)
    except GraphError as exc:
        if not (ctx.detect_delta and source.delta and not calendar.get("isDefaultCalendar")
                and is_unsupported_segment(exc)):
            raise
        _remember_no_delta(ctx, exc)
        ctx.repo.clear_cursor(ctx.user_id, calendar["id"])
        sync_calendar(ctx, calendar["id"], source_for(ctx, calendar))


def round_unless_gone(ctx: SyncContext, calendar: dict[str, Any]) -> bool:
    """`sync_calendar_events`; False when the calendar was deleted after it was listed (404).

    A calendar deleted between the list and its round must not stop the other calendars'
    rounds; the next calendar list removes its rows and its subscription."""
    try:
        sync_calendar_events(ctx, calendar)
        return True
    except GraphError as exc:
        if exc.status != 404 or calendar.get("isDefaultCalendar"):
            raise
        log.info("sync %s: calendar %s is gone (404 %s); the next calendar list drops it",
                 ctx.progress.label or ctx.user_id, calendar.get("name") or calendar["id"], exc.code)
        return False


def sync_events(ctx: SyncContext, calendars: list[dict[str, Any]]) -> None:
    """Every calendar's events, the primary one first (it is what most users look at)."""
    for calendar in sorted(calendars, key=lambda c: not c.get("isDefaultCalendar")):
        round_unless_gone(ctx, calendar)


@dataclass(frozen=True)
class CalendarRound:
    listed: bool  # the calendar list was read (calendars may have appeared or gone)
    found: bool   # the calendar still exists


OnListed = Callable[[list[dict[str, Any]]], None]


def list_calendars(ctx: SyncContext, on_listed: OnListed | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read and store the calendar list: (every calendar, the ones that never had a round)."""
    from shared.sync.calendars import sync_calendars

    calendars = sync_calendars(ctx)
    if on_listed is not None:
        on_listed(calendars)
    return calendars, [c for c in calendars if ctx.repo.get_cursor(ctx.user_id, c["id"]) is None]


def sync_one_calendar(ctx: SyncContext, calendar_id: str, listed_at: float | None,
                      on_listed: OnListed | None = None) -> CalendarRound:
    """The round of one calendar (a notification's); the calendar list only when stale or unaware of it."""
    known = {row.microsoft_calendar_id: row for row in ctx.repo.list_calendars(ctx.user_id)}
    max_age = 60 * int(ctx.settings.calendar_list_max_age_minutes)
    listed = calendar_id not in known or listed_at is None or time.time() - listed_at > max_age
    new: list[dict[str, Any]] = []
    if listed:
        calendars, new = list_calendars(ctx, on_listed)
        calendar = next((c for c in calendars if c["id"] == calendar_id), None)
    else:
        row = known[calendar_id]
        calendar = {**(row.data or {}), "id": calendar_id, "isDefaultCalendar": bool(row.is_default_calendar)}
    for first in (c for c in new if c["id"] != calendar_id):
        round_unless_gone(ctx, first)
    if calendar is None:
        log.info("sync %s: calendar %s is gone; nothing to sync", ctx.progress.label or ctx.user_id, calendar_id)
        return CalendarRound(listed, False)
    if round_unless_gone(ctx, calendar):
        return CalendarRound(listed, True)
    if not listed:  # gone since the stored list: read it now, so its rows and subscription go too
        _, new = list_calendars(ctx, on_listed)
        for first in new:
            round_unless_gone(ctx, first)
    return CalendarRound(True, False)


def sync_new_calendars(ctx: SyncContext, on_listed: OnListed | None = None) -> None:
    """The calendar list and the first round of calendars it shows for the first time, nothing else."""
    _, new = list_calendars(ctx, on_listed)
    for calendar in new:
        round_unless_gone(ctx, calendar)

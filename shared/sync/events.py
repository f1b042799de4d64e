"""Which way each calendar's events are read.

- The primary calendar: `calendarView/delta` in the window (v1.0 documents it).
- Other calendars: `calendars/{id}/calendarView/delta` when DELTA_OTHER_CALENDARS
  is on (beta behaviour), else a full `calendarView` listing every sync whose
  missing rows are deleted (a reconciling round; unchanged rows are not
  rewritten, so only real changes reach the outbound queue).
"""

from __future__ import annotations

from typing import Any

from shared.graph.paths import segment
from shared.sync.context import SyncContext
from shared.sync.delta import Source, sync_calendar
from shared.sync.window import graph_time


def source_for(ctx: SyncContext, calendar: dict[str, Any]) -> Source:
    window = {"startDateTime": graph_time(ctx.window[0]), "endDateTime": graph_time(ctx.window[1])}
    name = calendar.get("name") or calendar["id"][:12]
    if calendar.get("isDefaultCalendar"):
        return Source(f"{ctx.prefix}/calendarView/delta", window, delta=True, label=f"{name} (delta)")
    path = f"{ctx.prefix}/calendars/{segment(calendar['id'])}/calendarView"
    if ctx.settings.delta_other_calendars:
        return Source(f"{path}/delta", window, delta=True, label=f"{name} (delta)")
    return Source(path, window, delta=False, label=f"{name} (listing)")


def sync_events(ctx: SyncContext, calendars: list[dict[str, Any]]) -> None:
    """Every calendar's events, the primary one first (it is what most users look at)."""
    for calendar in sorted(calendars, key=lambda c: not c.get("isDefaultCalendar")):
        sync_calendar(ctx, calendar["id"], source_for(ctx, calendar))

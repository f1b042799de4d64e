"""The calendar-view window replicated for every calendar.

Whole UTC days, so the window only moves once a day: a delta token encodes its
window, and a moved window means a new (reconciling) round for every calendar.
The window-upkeep timer calls `current_window` and then syncs; the engine notices
the stored cursor's window differs and re-initialises that calendar's round.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings


def current_window(settings: Settings, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) in UTC: midnight `SYNC_WINDOW_DAYS_BACK` days ago to midnight `..._AHEAD` days on."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=int(settings.sync_window_days_back)),
            today + timedelta(days=int(settings.sync_window_days_ahead)))


def graph_time(value: datetime) -> str:
    """The form Graph's startDateTime/endDateTime accept: ISO-8601 UTC with a Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def same_window(stored: tuple[datetime | None, datetime | None], window: tuple[datetime, datetime]) -> bool:
    start, end = stored
    return start is not None and end is not None and start == window[0] and end == window[1]

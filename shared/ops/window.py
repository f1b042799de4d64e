"""Window upkeep: the calendar-view window is whole UTC days, so once a day it moves.

The daily timer queues a `window` sync for every linked account; the engine
sees that the stored cursor's window differs from `current_window` and starts
a reconciling round for that calendar, which keeps rows still inside the new
window and deletes those that fell out. Accounts whose cursors already carry
the current window are skipped (the timer may run twice, or late).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings


def enqueue_window_syncs(settings: Settings | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Queue SyncRequest(user, "window") for each linked account whose window moved; returns the users."""
    from shared.config import get_settings
    from shared.queues.messages import SyncRequest, enqueue_sync
    from shared.storage import open_repository
    from shared.sync.window import current_window, same_window

    settings = settings or get_settings()
    repo = open_repository(settings)
    window = current_window(settings, now)
    queued: list[str] = []
    for account in repo.list_accounts():
        user_id = account.microsoft_user_id
        if account.status != "linked" or not user_id:  # the key of a stored account is always set
            continue
        calendars = repo.list_calendars(user_id)
        cursors = [repo.get_cursor(user_id, c.microsoft_calendar_id) for c in calendars if c.microsoft_calendar_id]
        if calendars and all(c is not None and same_window((c.window_start, c.window_end), window) for c in cursors):
            continue
        enqueue_sync(SyncRequest(user_id, "window"), settings)
        queued.append(user_id)
    return queued

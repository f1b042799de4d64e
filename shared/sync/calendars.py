"""The calendar list: there is no delta for it in v1.0, so it is listed (paged) every sync.

New calendars are added, changed ones updated (newer-wins, no-op when equal),
and calendars Graph no longer lists are deleted with their events, cursors
and round markers (`repo.delete_calendars`) -- WebhookDB never removed them.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.sync.context import SyncContext

log = logging.getLogger("shared.sync")


def sync_calendars(ctx: SyncContext) -> list[dict[str, Any]]:
    """Store the user's calendars; returns Graph's list (what the events step iterates)."""
    calendars = [c for c in ctx.graph.iter_values(f"{ctx.prefix}/calendars", headers=ctx.page_headers)
                 if isinstance(c, dict) and c.get("id")]
    ctx.repo.upsert_calendars(ctx.user_id, calendars)  # changed rows reach the outbox with the write
    listed = {c["id"] for c in calendars}
    gone = [row.microsoft_calendar_id for row in ctx.repo.list_calendars(ctx.user_id)
            if row.microsoft_calendar_id is not None and row.microsoft_calendar_id not in listed]
    if gone:
        deleted = ctx.repo.delete_calendars(ctx.user_id, gone)  # events too, each deletion in the outbox
        log.info("sync %s: %d calendar(s) removed with their events", ctx.progress.label or ctx.user_id, len(deleted))
    return calendars

"""What every step of one user's sync shares: who, where, which window, how far it got.

Changed rows are not collected here: the repository records them in the outbox in the same
transaction as the write, and `outbound.publish_pending` publishes the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from shared.sync.progress import Progress

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph.protocol import GraphApi
    from shared.storage.base import Repository


@dataclass
class SyncContext:
    user_id: str
    repo: Repository
    graph: GraphApi           # for this mailbox
    settings: Settings
    window: tuple[datetime, datetime]
    prefix: str = "me"        # "me" (delegated) or "users/{graph id}" (app-only)
    full: bool = False        # drop delta links and reconcile everything
    progress: Progress = field(default_factory=Progress)
    delta_rounds: int = 0
    delta_other: bool = False   # calendarView/delta for non-default calendars (events.py)
    detect_delta: bool = False  # DELTA_OTHER_CALENDARS=auto: fall back to listings when unsupported
    # Publishes the outbox while the next page is still on its way (worker.py sets it), so a backfill
    # does not end with all its changes still to send; never raises (the end of the sync does).
    publish_ahead: Callable[[], None] | None = None

    @property
    def page_headers(self) -> dict[str, str]:
        return {"Prefer": f"odata.maxpagesize={self.settings.graph_page_size}"}

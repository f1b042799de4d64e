"""What every step of one user's sync shares: who, where, which window, how far it got.

Changed rows are not collected here: the repository records them in the outbox in the same
transaction as the write, and `outbound.publish_pending` publishes the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.sync.progress import Progress


@dataclass
class SyncContext:
    user_id: str
    repo: Any                 # shared.storage.Repository
    graph: Any                # shared.graph.GraphClient for this mailbox
    settings: Any
    window: tuple[datetime, datetime]
    prefix: str = "me"        # "me" (delegated) or "users/{graph id}" (app-only)
    full: bool = False        # drop delta links and reconcile everything
    progress: Progress = field(default_factory=Progress)
    delta_rounds: int = 0
    delta_other: bool = False   # calendarView/delta for non-default calendars (events.py)
    detect_delta: bool = False  # DELTA_OTHER_CALENDARS=auto: fall back to listings when unsupported
    crash_after_pages: int | None = None  # tests: simulate a worker killed after N pages

    @property
    def page_headers(self) -> dict[str, str]:
        return {"Prefer": f"odata.maxpagesize={int(self.settings.graph_page_size)}"}


class SimulatedCrash(RuntimeError):
    """Raised from inside the page loop when a test asks for a crash after N pages."""

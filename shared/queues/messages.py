"""Messages on the sync queue: small JSON documents, never Graph payloads.

A message says *which* user needs a sync and why; the worker reads Graph for
the *what*. Keeping messages tiny keeps the notification endpoint fast and
lets the worker coalesce many notifications into one delta round.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings

# Why a sync was asked for.
REASONS = frozenset({
    "notification",   # a change notification arrived
    "linked",         # an account was connected (sign-in, LINKED, app-only onboarding)
    "resync",         # RESYNC request, or lifecycle missed/subscriptionRemoved/reauthorizationRequired
    "renewal",        # the renewal timer found the subscription gone and recreated it
    "window",         # the calendar-view window moved
    "calendars",      # the renewal run (RENEWAL_RESYNC off) checks the calendar list: new and gone calendars
    "manual",         # an operator asked (CLI)
})


@dataclass(frozen=True)
class SyncRequest:
    user_id: str
    reason: str
    full: bool = False            # drop delta links and reconcile everything
    subscribe: bool = False       # ensure every calendar's subscription after the sync
    lifecycle_event: str | None = None
    subscription_id: str | None = None
    received_at: float = field(default_factory=time.time)
    calendar_id: str | None = None  # a calendar's notification: one delta round of that calendar only

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("a sync request needs a user_id")
        if self.reason not in REASONS:
            raise ValueError(f"unknown sync reason {self.reason!r}")
        if self.calendar_id is not None and (not isinstance(self.calendar_id, str) or not self.calendar_id):
            raise ValueError("calendar_id must be a non-empty string")

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, False)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SyncRequest:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a sync request is a JSON object")
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def enqueue_sync(request: SyncRequest, settings: Settings | None = None) -> None:
    """Put one sync request on the sync queue."""
    from shared.queues import SYNC_QUEUE, open_queue

    open_queue(SYNC_QUEUE, settings).send(request.to_json())

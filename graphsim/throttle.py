"""Outlook's per-(app, mailbox) limits: 4 concurrent requests and a request-rate window."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from .util import GraphError


class Throttle:
    def __init__(self, concurrency: int = 4, rate_limit: int = 10000, rate_window_s: float = 600.0,
                 retry_after: float = 1.0) -> None:
        self.concurrency = concurrency
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], int] = defaultdict(int)
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._blocked: dict[str, float] = {}  # mailbox -> monotonic time its quota comes back

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._hits.clear()
            self._blocked.clear()

    def block_mailbox(self, mailbox: str, seconds: float) -> None:
        """Every request for `mailbox` answers 429 with the remaining Retry-After for `seconds`
        (a mailbox whose quota ran out), whatever the app."""
        with self._lock:
            self._blocked[mailbox] = time.monotonic() + seconds

    def _retry(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(seconds)))}

    @contextmanager
    def slot(self, app_id: str, mailbox: str) -> Iterator[None]:
        """Hold one of the mailbox's concurrent slots for the duration of a request."""
        key = (app_id, mailbox)
        now = time.monotonic()
        with self._lock:
            blocked_until = self._blocked.get(mailbox, 0.0)
            if blocked_until > now:
                raise GraphError(429, "ApplicationThrottled", "Application is over its MailboxRequestRate limit.",
                                 self._retry(blocked_until - now))
            hits = self._hits[key]
            while hits and hits[0] <= now - self.rate_window_s:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                wait = hits[0] + self.rate_window_s - now
                raise GraphError(429, "ApplicationThrottled",
                                 "Application is over its MailboxRequestRate limit.", self._retry(wait),
                                 "MailboxRequestRate")
            if self._active[key] >= self.concurrency:
                raise GraphError(429, "ApplicationThrottled",
                                 "Application is over its MailboxConcurrency limit.",
                                 self._retry(self.retry_after), "MailboxConcurrency")
            hits.append(now)
            self._active[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[key] -= 1

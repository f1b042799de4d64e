"""At most N Graph requests in flight per mailbox in this process.

Outlook allows 4 concurrent requests per (app, mailbox); a fifth is answered
429 MailboxConcurrency. One BoundedSemaphore per mailbox key, shared by every
client of the process through `runtime.cached`, keeps us under it instead of
provoking throttling. (Other processes have their own semaphores; Graph's 429
plus our retries cover that case.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared import runtime


class MailboxSlots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    def semaphore(self, mailbox: str, limit: int) -> threading.BoundedSemaphore:
        key = mailbox.strip().lower()
        with self._lock:
            sem = self._semaphores.get(key)
            if sem is None:
                sem = self._semaphores[key] = threading.BoundedSemaphore(max(1, limit))
            return sem

    @contextmanager
    def slot(self, mailbox: str | None, limit: int) -> Iterator[None]:
        """Hold one of `mailbox`'s slots; no limit when the request is not about a mailbox."""
        if not mailbox or limit <= 0:
            yield
            return
        sem = self.semaphore(mailbox, limit)
        sem.acquire()
        try:
            yield
        finally:
            sem.release()


def mailbox_slots() -> MailboxSlots:
    return runtime.cached("graph.mailbox_slots", MailboxSlots)

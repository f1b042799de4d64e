"""One sync per user at a time.

Inside a process: a lock per user; a second message for the same user waits,
then usually finds itself covered by the sync that just ran (coalescing in
`worker.py`). Across processes (several Function instances): the repository's
lease `sync:<user>` (`acquire_lease` / `release_lease`, compare-and-set on every
backend); `hold` waits for another instance to finish, and says so in the log.

The lease is short (SYNC_LEASE_SECONDS, 45 s by default) and renewed every
third of it while the sync runs (`_Heartbeat`), so a long backfill keeps it and
a killed worker blocks the user's next sync for at most one lease. Were a lease
to lapse mid-sync anyway (a renewal that could not reach the database), two
instances syncing one user is safe, only wasteful: both follow the same links,
every write is an idempotent newer-wins merge, and each page is stored with its
cursor in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.storage.base import Repository

log = logging.getLogger("shared.sync")

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_OWNER = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
DEFAULT_LEASE_SECONDS = 45
WAIT_LOG_SECONDS = 10.0  # while waiting for another instance's lease, one log line at most this far apart


class LockTimeout(RuntimeError):
    """Another sync of this user ran too long; the message is retried later (transient)."""


def _local(user_id: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(user_id, threading.Lock())


class _Heartbeat:
    """Renews a held lease every third of its lifetime until stopped."""

    def __init__(self, repo: Repository, name: str, lease_seconds: float) -> None:
        self.repo, self.name, self.lease_seconds = repo, name, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if not self.repo.acquire_lease(self.name, _OWNER, self.lease_seconds):
                    log.error("lease %s was taken by another worker while this sync ran", self.name)
            except Exception as exc:  # the next beat tries again; the sync itself goes on
                log.warning("lease %s not renewed (%s: %s)", self.name, type(exc).__name__, exc)


@contextlib.contextmanager
def hold(user_id: str, repo: Repository, timeout: float = 300.0,
         lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Iterator[None]:
    lock = _local(user_id)
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"user {user_id} is being synced by another worker of this process")
    try:
        name = f"sync:{user_id}"
        started = time.monotonic()
        next_log = started
        while not repo.acquire_lease(name, _OWNER, lease_seconds):  # another instance syncs this user: wait for it
            now = time.monotonic()
            if now - started > timeout:
                raise LockTimeout(f"user {user_id} is being synced by another instance")
            if now >= next_log:
                log.info("sync %s waiting for lease %s (held by another worker; it expires within %ds of"
                         " its last renewal), waited %.0fs", user_id, name, lease_seconds, now - started)
                next_log = now + min(WAIT_LOG_SECONDS, lease_seconds / 2)
            time.sleep(0.25)
        if next_log > started:  # we waited: say when it ended
            log.info("sync %s: lease %s taken after %.1fs", user_id, name, time.monotonic() - started)
        try:
            with _Heartbeat(repo, name, lease_seconds):
                yield
        finally:
            repo.release_lease(name, _OWNER)
    finally:
        lock.release()

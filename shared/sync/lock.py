"""One sync per user at a time.

Inside a process: a lock per user; a second message for the same user waits,
then usually finds itself covered by the sync that just ran (coalescing in
`worker.py`). Across processes (several Function instances): the repository's
lease `sync:<user>` (`acquire_lease` / `release_lease`, compare-and-set on every
backend); `hold` waits for another instance to finish. Were a lease to lapse
mid-sync, two instances syncing one user is safe, only wasteful: both follow
the same links, every write is an idempotent newer-wins merge, and each page
is stored with its cursor in one transaction.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_OWNER = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LockTimeout(RuntimeError):
    """Another sync of this user ran too long; the message is retried later (transient)."""


def _local(user_id: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(user_id, threading.Lock())


@contextlib.contextmanager
def hold(user_id: str, repo: Any, timeout: float = 300.0, lease_seconds: int = 600) -> Iterator[None]:
    lock = _local(user_id)
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"user {user_id} is being synced by another worker of this process")
    try:
        name = f"sync:{user_id}"
        deadline = time.monotonic() + timeout
        while not repo.acquire_lease(name, _OWNER, lease_seconds):  # another instance syncs this user: wait for it
            if time.monotonic() > deadline:
                raise LockTimeout(f"user {user_id} is being synced by another instance")
            time.sleep(0.25)
        try:
            yield
        finally:
            repo.release_lease(name, _OWNER)
    finally:
        lock.release()

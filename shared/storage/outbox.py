"""The outbox read side and the counters that share its sequence table."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from shared.storage.engine import Conflict, RepositoryCore, TxT
from shared.storage.rows import (
    COUNTER_ROUNDS,
    chunks,
)
from shared.storage.schema import (
    OUTBOX,
    OUTBOX_SEQ,
)
from shared.storage.types import (
    OutboxEntry,
)

log = logging.getLogger("shared.storage")


class OutboxStore(RepositoryCore[TxT]):
    """Pending changes in commit order, their acknowledgement, and named atomic counters."""

    # ------------------------------------------------------------------ outbox
    def pending_changes(self, user_id: str, limit: int = 500) -> list[OutboxEntry]:
        """The user's changes not yet acknowledged, oldest first (at most `limit`)."""
        rows = self._select(OUTBOX, user_id, {"microsoft_user_id": user_id}, limit=limit)
        return [OutboxEntry(r["seq"], r["row_table"], r["remote_id"], r["kind"], r["version"] or "", r["created_at"],
                            r.get("row_data")) for r in rows]

    def ack_changes(self, user_id: str, entry_ids: Iterable[int]) -> None:
        """Forget published entries (their `seq`); unknown or already acknowledged ones are ignored."""
        seqs = sorted(set(entry_ids))
        for chunk in chunks(seqs, self.chunk_size):
            scope: dict[str, Any] = {"microsoft_user_id": user_id, "seq": list(chunk)}

            def unit(tx: TxT, scope: dict[str, Any] = scope) -> list[str]:
                return self._delete(tx, OUTBOX, user_id, scope)

            self._atomic(user_id, unit)

    # ------------------------------------------------------------------ counters
    def increment(self, name: str, by: int = 1) -> int:
        """Add `by` to the counter `name` atomically across instances; returns the new value.

        Counters are rows of the outbox-sequence table, so they reuse its atomic increment (row lock
        on SQL, If-Match on Tables). Their names contain ':' ('webhook:crm:delivered'), which a
        microsoft_user_id never does.
        """
        if ":" not in name:
            raise ValueError("counter names contain ':' so they never collide with a user's sequence")
        for attempt in range(COUNTER_ROUNDS):  # a hot counter on Tables loses If-Match races often
            try:
                return self._atomic(name, lambda tx: self._allocate(tx, name, by))
            except Conflict:
                if attempt == COUNTER_ROUNDS - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise AssertionError("unreachable")

    def counter(self, name: str) -> int:
        row = self._get(OUTBOX_SEQ, name, {"microsoft_user_id": name})
        return int(row["last_seq"]) if row else 0

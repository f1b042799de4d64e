"""Single-use sign-in states (flows)."""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from datetime import datetime

from shared.storage.engine import RepositoryCore, TxT
from shared.storage.rows import (
    utc,
)

log = logging.getLogger("shared.storage")


class FlowStore(RepositoryCore[TxT]):
    """Sign-in states used once."""

    # ------------------------------------------------------------------ sign-in states used
    def claim_flow(self, key: str, expires_at: datetime) -> bool:
        """Record that the sign-in state `key` was used: True the first time, False ever after (until
        `expires_at`, when the state itself has expired). Atomic across instances; expired markers
        of earlier sign-ins are swept here."""
        if not key or len(key) > 128:
            raise ValueError("a sign-in state key has 1-128 characters")
        claimed = self._claim_flow(key, int(utc(expires_at).timestamp() * 1000))
        with suppress(Exception):  # housekeeping never fails a sign-in; the next claim sweeps again
            self._sweep_flows(int(time.time() * 1000))
        return claimed

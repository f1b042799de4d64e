"""Sign-ins in flight: MSAL's auth-code flow dict kept server-side between start and callback.

The flow holds the PKCE verifier and the nonce, so it stays on the server --
never in a cookie or a URL -- in the repository's table of sign-ins in flight
(`put_flow` / `take_flow`), keyed by sha256(state), so every instance of the
app sees the same flows. `take` removes the flow as it reads it, atomically on
every backend (SQL `DELETE ... RETURNING`, Table Storage delete with If-Match):
a state works once even when two callbacks race. Flows expire after ten
minutes; an expired flow is never returned, and expired ones are swept when
later sign-ins start. The secret store (Key Vault) is not involved: a vault
secret per sign-in would stay soft-deleted for the retention period and count
against the vault's request limits. Flows are never logged.

Each record is sealed with the token cipher (AES-256-GCM, bound to its key), so
a database reader never sees a PKCE verifier or nonce. A record that does not
open -- tampered, or sealed with a key retired meanwhile -- counts as unknown:
the callback answers 400 and the person signs in again.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

FLOW_LIFETIME_SECONDS = 600
MAX_STATE_CHARS = 512


def flow_key(state: str) -> str:
    """The state's SHA-256 (hex): the repository never sees the state itself."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _associated(key: str) -> str:
    return f"oauth-flow:{key}"


class FlowStore:
    def __init__(self, repo: Any, cipher: Any, lifetime: float = FLOW_LIFETIME_SECONDS) -> None:
        self.repo = repo
        self.cipher = cipher
        self.lifetime = lifetime

    def __repr__(self) -> str:
        return f"FlowStore(lifetime={self.lifetime})"

    def put(self, state: str, flow: dict[str, Any], **extra: Any) -> None:
        expires_at = datetime.fromtimestamp(time.time() + self.lifetime, UTC)
        key = flow_key(state)
        sealed = self.cipher.encrypt(json.dumps({"flow": flow, **extra}), _associated(key))
        self.repo.put_flow(key, {"sealed": sealed}, expires_at)

    def take(self, state: str) -> dict[str, Any] | None:
        """The record for `state` ({"flow": ..., **extra}), removed; None if unknown, used or expired."""
        if not state or len(state) > MAX_STATE_CHARS:
            return None
        from shared.crypto import TokenDecryptError

        key = flow_key(state)
        stored = self.repo.take_flow(key)
        if not isinstance(stored, dict) or not isinstance(stored.get("sealed"), str):
            return None
        try:
            record = json.loads(self.cipher.decrypt(stored["sealed"], _associated(key)))
        except (TokenDecryptError, ValueError):
            return None
        return record if isinstance(record, dict) and "flow" in record else None


def get_flow_store(settings=None) -> FlowStore:
    from shared.auth import deps

    return FlowStore(deps.repository(settings), deps.cipher(settings))

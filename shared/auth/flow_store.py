"""Sign-ins in flight: MSAL's auth-code flow dict kept server-side between start and callback.

The flow holds the PKCE verifier and the nonce, so it is kept in the secret
store (Key Vault in Azure, 0600 files locally) under `oauth-flow-<sha256(state)>`
— never in a cookie or a URL — and read straight from the backend (no cache),
so every instance of the app sees the same flows. `take` removes the entry as
it reads it: a state works once. The local store's removal is atomic; with
Key Vault two simultaneous callbacks for the same state could both read it,
but the identity platform redeems an authorization code once, so only one
can complete. Entries expire after ten minutes; expired ones are swept on
later sign-ins.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

FLOW_PREFIX = "oauth-flow-"
FLOW_LIFETIME_SECONDS = 600
_SWEEP_EVERY_SECONDS = 600


def _name(state: str) -> str:
    return FLOW_PREFIX + hashlib.sha256(state.encode("utf-8")).hexdigest()[:48]


class FlowStore:
    def __init__(self, backend: Any, clock=time.time, lifetime: float = FLOW_LIFETIME_SECONDS) -> None:
        self.backend = backend
        self._clock = clock
        self.lifetime = lifetime
        self._last_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def put(self, state: str, flow: dict[str, Any], **extra: Any) -> None:
        record = {"expires": self._clock() + self.lifetime, "flow": flow, **extra}
        self.backend.set(_name(state), json.dumps(record, separators=(",", ":")))
        self._maybe_sweep()

    def take(self, state: str) -> dict[str, Any] | None:
        """The record for `state`, removed from the store; None if unknown, used or expired."""
        if not state or len(state) > 512:
            return None
        raw = self.backend.pop(_name(state))
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(record, dict) or float(record.get("expires", 0)) < self._clock():
            return None
        return record

    def sweep(self) -> int:
        """Delete expired entries; returns how many."""
        removed = 0
        now = self._clock()
        for name in self.backend.names(FLOW_PREFIX):
            raw = self.backend.get(name)
            try:
                expires = float(json.loads(raw).get("expires", 0)) if raw else 0.0
            except (ValueError, AttributeError):
                expires = 0.0
            if expires < now:
                self.backend.delete(name)
                removed += 1
        return removed

    def _maybe_sweep(self) -> None:
        now = self._clock()
        if now - self._last_sweep < _SWEEP_EVERY_SECONDS or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._last_sweep = now
            self.sweep()
        except Exception:  # noqa: S110 - housekeeping never fails a sign-in
            pass
        finally:
            self._sweep_lock.release()


def get_flow_store(settings=None) -> FlowStore:
    from shared import runtime
    from shared.secrets import open_secret_store

    store = open_secret_store(settings)
    return runtime.cached(f"auth:flow_store:{id(store)}", lambda: FlowStore(store.backend))

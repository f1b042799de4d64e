"""Sign-ins in flight travel sealed inside the OAuth `state`; the repository only records used ones.

`GET /api/oauth/start` is anonymous, so it writes nothing: what MSAL's
auth-code flow must keep between start and callback (PKCE verifier, nonce,
scopes), the expiry and the account a re-consent is for are sealed with the
token cipher (AES-256-GCM, bound by its associated data to this purpose) and
sent as the `state` parameter, ~0.5 KB. Nobody can read or forge it: the
verifier and nonce never leave the server in clear, and a changed state fails
authentication (-> "unknown", 400). Only the current token key opens states, so
a forged key id never makes the callback read the secret store; a key rotation
during a sign-in means signing in again.

Single use: after the identity platform redeemed the code, the callback
claims sha256(state) in the repository (`claim_flow`, an insert only the first
caller makes, atomic on every backend), so a state completes one sign-in even
when two callbacks race. Markers live until the state's expiry and are swept
by later claims; they are written only for codes the identity platform
accepted, i.e. one per real sign-in. States are never logged.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.crypto.cipher import TokenCipher
    from shared.storage.base import Repository

FLOW_LIFETIME_SECONDS = 600
MAX_STATE_CHARS = 2048
_PURPOSE = "oauth-state"  # associated data: a state never opens as a refresh token, nor one as a state


@dataclass(frozen=True)
class Flow:
    """What the callback needs back: MSAL's flow (without its URL), the expiry, the re-consent account."""

    msal_flow: dict[str, Any]
    expires_at: float
    reconsent_user_id: str | None = None


def flow_key(state: str) -> str:
    """The state's SHA-256 (hex): the repository never sees the state itself."""
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


class FlowStore:
    def __init__(self, repo: Repository, cipher: TokenCipher, lifetime: float = FLOW_LIFETIME_SECONDS) -> None:
        self.repo = repo
        self.cipher = cipher
        self.lifetime = lifetime

    def __repr__(self) -> str:
        return f"FlowStore(lifetime={self.lifetime})"

    def seal(self, msal_flow: dict[str, Any], reconsent_user_id: str | None = None) -> str:
        """The state to send: the flow's secrets and the expiry, encrypted and authenticated."""
        record = {"v": msal_flow["code_verifier"], "n": msal_flow["nonce"], "s": msal_flow["scope"],
                  "e": int(time.time() + self.lifetime)}
        if reconsent_user_id:
            record["u"] = reconsent_user_id
        return self.cipher.encrypt(json.dumps(record, separators=(",", ":")), _PURPOSE)

    def open(self, state: str, redirect_uri: str) -> Flow | None:
        """The flow sealed in `state`; None when it is malformed, tampered, sealed with an older key
        or expired. Does not consume it (see `claim`)."""
        from shared.crypto import TokenDecryptError, key_id_of

        if not isinstance(state, str) or not state or len(state) > MAX_STATE_CHARS:
            return None
        try:
            if key_id_of(state) != self.cipher.current_key_id():
                return None
            record = json.loads(self.cipher.decrypt(state, _PURPOSE))
        except (TokenDecryptError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("e"), int) or record["e"] < time.time():
            return None
        msal_flow = {"state": state, "redirect_uri": redirect_uri, "scope": record.get("s"),
                     "code_verifier": record.get("v"), "nonce": record.get("n"), "claims_challenge": None}
        return Flow(msal_flow, float(record["e"]), record.get("u"))

    def claim(self, state: str, flow: Flow) -> bool:
        """Mark `state` used; True for the first caller only."""
        return self.repo.claim_flow(flow_key(state), datetime.fromtimestamp(flow.expires_at, UTC))


def get_flow_store(settings: Settings | None = None) -> FlowStore:
    from shared.auth import deps

    return FlowStore(deps.repository(settings), deps.cipher(settings))

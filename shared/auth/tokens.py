"""Access tokens per user: cached, refreshed through MSAL, rotated refresh tokens kept.

Concurrency: one refresh per user at a time inside a process (a lock per user;
the second caller finds the fresh token in the cache). Across processes there
is no shared lock; instead (a) the stored token is re-read after taking the
lock, (b) a rotated refresh token is written only if the stored ciphertext is
still the one we refreshed with (check-then-write), and (c) before declaring
`invalid_grant` final we re-read the stored token and retry once if another
process or a REFRESHED request stored a different one. The identity platform
keeps an old refresh token valid after issuing a new one, so a lost race
costs one extra refresh, never an account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.auth import deps
from shared.auth.errors import AuthError, NotLinked, ReauthRequired, TokenError
from shared.config import ConfigError

if TYPE_CHECKING:
    from shared.config import Settings

EXPIRY_MARGIN_SECONDS = 300
# Errors meaning "this grant is dead until the user signs in again".
REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
_TENANTLESS = frozenset({"common", "organizations", "consumers"})
_APP = "\0app"  # cache key of the app token (never a user id)


@dataclass(frozen=True)
class _Cached:
    token: str
    expires_at: float


class GrantRejected(AuthError):
    """MSAL said the refresh token is dead (invalid_grant & co.)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error_reason(result: dict[str, Any]) -> str:
    """`AADSTS50173: The provided grant has expired ...` without trace ids and timestamps."""
    description = str(result.get("error_description") or result.get("error") or "unknown error")
    first = description.splitlines()[0] if description else ""
    for marker in (" Trace ID:", " Correlation ID:", " Timestamp:"):
        first = first.split(marker)[0]
    return first.strip()[:500] or str(result.get("error"))


class TokenService:
    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        from shared.config import get_settings

        self.settings = settings or get_settings()
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._modes: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.refreshes = 0  # how many refresh-token redemptions this process made (tests, metrics)

    # -- helpers ----------------------------------------------------------------
    def _lock_for(self, user_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(user_id, threading.Lock())

    def _fresh(self, user_id: str) -> str | None:
        hit = self._cache.get(user_id)
        if hit and hit.expires_at - EXPIRY_MARGIN_SECONDS > self._clock():
            return hit.token
        return None

    def remember(self, user_id: str, access_token: str, expires_in: float) -> None:
        """Cache an access token obtained elsewhere (sign-in, LINKED validation)."""
        self._cache[user_id] = _Cached(access_token, self._clock() + float(expires_in))

    def invalidate(self, user_id: str) -> None:
        """Forget the cached token (Graph answered 401) so the next call refreshes."""
        self._cache.pop(user_id, None)
        self._modes.pop(user_id, None)

    def invalidate_app(self) -> None:
        """Forget the app token (a 401 on an app-only call).

        MSAL keeps client-credential tokens in its own cache and would hand the
        rejected one back, so its app-level access tokens (those without a
        home account) are removed too; the next `app_token()` asks the
        identity platform.
        """
        self._cache.pop(_APP, None)
        cache = deps.msal_app(self.settings).token_cache
        for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            if not item.get("home_account_id"):
                cache.remove_at(item)

    # -- refresh-token primitives ---------------------------------------------
    def redeem(self, refresh_token: str) -> dict[str, Any]:
        """One MSAL refresh. Returns MSAL's result with an access token, raises
        GrantRejected for a dead grant and TokenError for anything else."""
        from shared.auth.msal_app import delegated_scopes

        try:
            result = deps.msal_app(self.settings).acquire_token_by_refresh_token(
                refresh_token, scopes=delegated_scopes(self.settings))
        except ConfigError:
            raise  # a missing or malformed setting names itself; it is not an unreachable endpoint
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}") from None
        self.refreshes += 1
        if "access_token" in result:
            return result
        if result.get("error") in REAUTH_ERRORS:
            raise GrantRejected(error_reason(result))
        raise TokenError(f"token refresh failed: {error_reason(result)}")

    def store_refresh_token(self, user_id: str, refresh_token: str) -> str:
        """Encrypt and persist a refresh token; returns the ciphertext."""
        encrypted = deps.cipher(self.settings).encrypt(refresh_token, user_id)
        deps.repository(self.settings).set_refresh_token(user_id, encrypted)
        return encrypted

    def mark_reauth(self, user_id: str, reason: str) -> None:
        deps.repository(self.settings).update_account(
            user_id, status="reauth_required", status_reason=reason, status_changed_at=deps.utcnow())
        self.invalidate(user_id)

    # -- public ------------------------------------------------------------
    def access_token(self, user_id: str) -> str:
        """A Graph access token for the user, valid for at least five more minutes."""
        hit = self._fresh(user_id)
        if hit:
            return hit
        if self._modes.get(user_id) == "app_only":
            return self.app_token()
        with self._lock_for(user_id):
            hit = self._fresh(user_id)
            if hit:
                return hit
            repo = deps.repository(self.settings)
            account = repo.get_account(user_id)
            if account is not None and account.mode == "app_only":
                self._modes[user_id] = "app_only"
                return self.app_token()
            if account is not None and account.status == "reauth_required":
                raise ReauthRequired(user_id, account.status_reason or "the user must sign in again")
            row = repo.get_user(user_id)
            if row is None:
                raise NotLinked(user_id)
            if not row.encrypted_refresh_token:
                self.mark_reauth(user_id, "no refresh token stored")
                raise ReauthRequired(user_id, "no refresh token stored")
            return self._refresh_stored(user_id, row.encrypted_refresh_token)

    def _refresh_stored(self, user_id: str, stored: str) -> str:
        from shared.crypto import TokenDecryptError

        repo, cipher = deps.repository(self.settings), deps.cipher(self.settings)
        for attempt in range(2):
            try:
                refresh_token = cipher.decrypt(stored, user_id)
            except TokenDecryptError as exc:
                self.mark_reauth(user_id, f"stored refresh token unreadable: {exc}")
                raise ReauthRequired(user_id, str(exc)) from None
            try:
                result = self.redeem(refresh_token)
            except GrantRejected as rejected:
                latest = repo.get_user(user_id)
                newer = latest.encrypted_refresh_token if latest else None
                if attempt == 0 and newer and newer != stored:
                    stored = newer  # someone stored a new token meanwhile: try that one
                    continue
                self.mark_reauth(user_id, rejected.reason)
                raise ReauthRequired(user_id, rejected.reason) from None
            rotated = result.get("refresh_token")
            if rotated and rotated != refresh_token:
                latest = repo.get_user(user_id)
                if latest is not None and latest.encrypted_refresh_token == stored:
                    repo.set_refresh_token(user_id, cipher.encrypt(rotated, user_id))
            token: str = result["access_token"]
            self.remember(user_id, token, result.get("expires_in", 3599))
            return token
        raise AssertionError("unreachable")

    def app_token(self) -> str:
        """An app-only (client credentials) token for Graph in the configured tenant."""
        from shared.auth.msal_app import authority_of, graph_root

        authority, _ = authority_of(self.settings)
        tenant = authority.rstrip("/").rsplit("/", 1)[-1]
        if tenant.lower() in _TENANTLESS:
            raise ConfigError(
                f"app-only access needs a tenant: TENANT={tenant} cannot issue client-credential tokens; "
                "set TENANT to the directory (tenant) id"
            )
        hit = self._fresh(_APP)
        if hit:
            return hit
        try:
            result = deps.msal_app(self.settings).acquire_token_for_client(
                scopes=[graph_root(self.settings) + "/.default"])
        except ConfigError:
            raise
        except (OSError, ValueError) as exc:
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}") from None
        if "access_token" not in result:
            raise TokenError(f"client credentials refused: {error_reason(result)}")
        token: str = result["access_token"]
        self.remember(_APP, token, result.get("expires_in", 3599))
        return token


def get_token_service(settings: Settings | None = None) -> TokenService:
    from shared import runtime

    return runtime.cached("auth:token_service", lambda: TokenService(settings))

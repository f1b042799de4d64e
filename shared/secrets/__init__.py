"""Secret store: the client secret and the token-encryption keys (a sign-in in flight travels in its OAuth state).

Two backends share one small interface: Azure Key Vault when KEY_VAULT_URL is
set (managed identity in Azure), a folder of 0600 files otherwise. Names
follow Key Vault's rule (letters, digits, dashes) everywhere so a local setup
moves to Key Vault unchanged. Reads go through an in-memory TTL cache because
a Key Vault round trip costs tens of milliseconds and is rate limited.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings

CLIENT_SECRET = "client-secret"  # noqa: S105 - a name in the store, not a value

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class SecretNameError(ValueError):
    """A name Key Vault would refuse (only letters, digits and '-', at most 127)."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SecretNameError(
            f"invalid secret name {name!r}: use 1-127 letters, digits or '-' (Key Vault's rule)"
        )
    return name


class SecretStore(ABC):
    """Four primitives every backend implements; everything else is built on them."""

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The secret's value, or None when it does not exist."""

    @abstractmethod
    def set(self, name: str, value: str) -> None:
        """Create or replace a secret."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a secret; a missing one is not an error."""

    @abstractmethod
    def names(self, prefix: str = "") -> list[str]:
        """Names of existing secrets starting with `prefix`, sorted."""

    def pop(self, name: str) -> str | None:
        """Read and delete in one step. Backends that can do it atomically override this."""
        value = self.get(name)
        if value is not None:
            self.delete(name)
        return value

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients (runtime.reset calls it)."""


class CachedSecretStore(SecretStore):
    """A TTL cache in front of a backend. Only values found are cached, so a
    secret created by another process (a new encryption key) is seen at once."""

    def __init__(self, backend: SecretStore, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.ttl = ttl_seconds
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, fresh: bool = False) -> str | None:
        check_name(name)
        now = self._clock()
        if not fresh and self.ttl > 0:
            with self._lock:
                hit = self._values.get(name)
            if hit is not None and hit[1] > now:
                return hit[0]
        value = self.backend.get(name)
        with self._lock:
            if value is None or self.ttl <= 0:
                self._values.pop(name, None)
            else:
                self._values[name] = (value, now + self.ttl)
        return value

    def set(self, name: str, value: str) -> None:
        self.backend.set(name, value)
        with self._lock:
            if self.ttl > 0:
                self._values[name] = (value, self._clock() + self.ttl)

    def delete(self, name: str) -> None:
        with self._lock:
            self._values.pop(name, None)
        self.backend.delete(name)

    def pop(self, name: str) -> str | None:
        with self._lock:
            self._values.pop(name, None)
        return self.backend.pop(name)

    def names(self, prefix: str = "") -> list[str]:
        return self.backend.names(prefix)

    def close(self) -> None:
        self.backend.close()


def build_backend(settings: Settings) -> SecretStore:
    """The configured backend without the cache."""
    if settings.key_vault_url:
        from shared.secrets.keyvault import KeyVaultSecretStore

        return KeyVaultSecretStore(settings.key_vault_url)
    from shared.secrets.local import LocalSecretStore

    return LocalSecretStore(settings.local_secrets_dir)


def open_secret_store(settings: Settings | None = None) -> CachedSecretStore:
    """The process's secret store (cached singleton; `.backend` bypasses the TTL cache)."""
    from shared import runtime
    from shared.config import get_settings

    settings = settings or get_settings()
    where = settings.key_vault_url or settings.local_secrets_dir
    return runtime.cached(
        f"secrets:{where}",
        lambda: CachedSecretStore(build_backend(settings), settings.secret_cache_seconds),
    )


__all__ = [
    "CLIENT_SECRET",
    "CachedSecretStore",
    "SecretNameError",
    "SecretStore",
    "build_backend",
    "check_name",
    "open_secret_store",
]

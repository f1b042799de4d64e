"""AES-256-GCM token cipher with versioned, key-id-carrying ciphertexts.

Why GCM with a random 96-bit nonce: equal tokens give different ciphertexts
(WebhookDB's all-zero IV did not) and any change to the stored text is
detected. Keys are 32 random bytes stored base64url under `token-key-<id>`;
`token-key-current` names the key new ciphertexts use. Key ids are random hex
so two processes creating the first key at once cannot collide.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from shared.config import Settings
    from shared.secrets import SecretStore

VERSION = "v1"
KEY_PREFIX = "token-key-"
CURRENT_KEY = "token-key-current"
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_NONCE_BYTES = 12
log = logging.getLogger("shared.crypto")


class TokenDecryptError(Exception):
    """A stored token cannot be decrypted: tampered, bound to another user, or its key is gone."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_name(key_id: str) -> str:
    return KEY_PREFIX + key_id


def _parse(ciphertext: str) -> tuple[str, str]:
    """(key id, payload) of a ciphertext, or TokenDecryptError naming what is wrong."""
    if not isinstance(ciphertext, str):
        raise TokenDecryptError("stored token is not text")
    parts = ciphertext.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenDecryptError("stored token is not in the v1.<key id>.<data> format")
    if not _KEY_ID.match(parts[1]):
        raise TokenDecryptError("stored token carries a malformed key id")
    return parts[1], parts[2]


def key_id_of(ciphertext: str) -> str:
    """The key id a ciphertext was made with (rotation uses it to find stale rows)."""
    return _parse(ciphertext)[0]


def _aad(key_id: str, user_id: str) -> bytes:
    return f"calsync-refresh-token|{VERSION}|{key_id}|{user_id}".encode()


class TokenCipher:
    """Encrypts and decrypts refresh tokens with keys held in a secret store."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store
        self._keys: dict[str, AESGCM] = {}  # key id -> its cipher (a key id's bytes never change)
        self._lock = threading.Lock()

    # -- keys ---------------------------------------------------------------------
    def _load(self, key_id: str) -> AESGCM:
        aead = self._keys.get(key_id)
        if aead is not None:
            return aead
        raw = self.store.get(key_name(key_id))
        if raw is None:
            raise TokenDecryptError(f"encryption key {key_id} is not in the secret store")
        try:
            material = _b64d(raw.strip())
        except (binascii.Error, ValueError):
            raise TokenDecryptError(f"encryption key {key_id} in the secret store is malformed") from None
        if len(material) != 32:
            raise TokenDecryptError(f"encryption key {key_id} is not 256 bits")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(material)
        with self._lock:
            self._keys[key_id] = aead
        return aead

    def create_key(self, *, make_current: bool = True) -> str:
        """Store a new random key (and by default make it current); returns its id."""
        key_id = secrets.token_hex(6)
        self.store.set(key_name(key_id), _b64e(secrets.token_bytes(32)))
        if make_current:
            self.store.set(CURRENT_KEY, key_id)
        return key_id

    def current_key_id(self) -> str:
        """The key new ciphertexts use, created on first use."""
        key_id = (self.store.get(CURRENT_KEY) or "").strip()
        if key_id and _KEY_ID.match(key_id):
            return key_id
        with self._lock:  # one creation per process; across processes both keys stay usable
            key_id = (self.store.get(CURRENT_KEY) or "").strip()
            if key_id and _KEY_ID.match(key_id):
                return key_id
            return self.create_key()

    def key_ids(self) -> list[str]:
        """Every key id in the store (current and older)."""
        return [n[len(KEY_PREFIX):] for n in self.store.names(KEY_PREFIX) if _KEY_ID.match(n[len(KEY_PREFIX):])]

    def delete_key(self, key_id: str) -> None:
        if not _KEY_ID.match(key_id):
            raise ValueError(f"malformed key id {key_id!r}")
        self.store.delete(key_name(key_id))
        with self._lock:
            self._keys.pop(key_id, None)

    # -- tokens ---------------------------------------------------------------
    def encrypt(self, plaintext: str, user_id: str) -> str:
        if not user_id:
            raise ValueError("a token is always encrypted for a user id")
        key_id = self.current_key_id()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._load(key_id).encrypt(nonce, plaintext.encode("utf-8"), _aad(key_id, user_id))
        return f"{VERSION}.{key_id}.{_b64e(nonce + sealed)}"

    def decrypt(self, ciphertext: str, user_id: str) -> str:
        key_id, payload = _parse(ciphertext)
        try:
            blob = _b64d(payload)
        except (binascii.Error, ValueError):
            raise TokenDecryptError("stored token is not valid base64url") from None
        if len(blob) < _NONCE_BYTES + 16:
            raise TokenDecryptError("stored token is truncated")
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._load(key_id).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(key_id, user_id))
        except InvalidTag:
            # A security event: someone changed stored ciphertext (or moved it to another user).
            # Logged with the user and key id only; neither the ciphertext nor any key is.
            log.warning("SECURITY: stored token for user %.200r failed AES-GCM authentication with key %s"
                        " (tampered, or stored for another user)", user_id, key_id)
            raise TokenDecryptError(
                f"stored token for user {user_id!r} failed authentication (tampered, or stored for another user)"
            ) from None
        return plain.decode("utf-8")


def get_token_cipher(settings: Settings | None = None) -> TokenCipher:
    """The process's cipher over the process's secret store."""
    from shared import runtime
    from shared.secrets import open_secret_store

    store = open_secret_store(settings)
    return runtime.cached(f"crypto:cipher:{id(store)}", lambda: TokenCipher(store))

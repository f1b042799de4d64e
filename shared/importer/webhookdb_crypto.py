"""Reading refresh tokens as WebhookDB stored them, to re-encrypt them with this product's cipher.

WebhookDB encrypts `encrypted_refresh_token` with AES-256-CBC, PKCS#7 padding and an
all-zero IV (no IV is set on its cipher), under a 32-byte key written as URL-safe
base64; the ciphertext is URL-safe base64 too. That scheme is deterministic and
unauthenticated, which is why tokens are moved to AES-GCM (`shared/crypto`) here
rather than kept: decrypted in memory, never written anywhere in clear.
"""

from __future__ import annotations

import base64
import binascii

KEY_BYTES = 32
_BLOCK = 16


class WebhookDbKeyError(ValueError):
    """The WebhookDB encryption key is not 32 bytes of URL-safe base64."""


class WebhookDbDecryptError(ValueError):
    """A stored token does not decrypt with the key (wrong key, or a damaged value)."""


def _b64(text: str) -> bytes:
    cleaned = "".join(text.split())
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def parse_key(text: str) -> bytes:
    try:
        key = _b64(text)
    except (binascii.Error, ValueError):
        raise WebhookDbKeyError("the WebhookDB key is not URL-safe base64") from None
    if len(key) != KEY_BYTES:
        raise WebhookDbKeyError(f"the WebhookDB key must be {KEY_BYTES} bytes once decoded, got {len(key)}")
    return key


def encrypt(key: bytes, plaintext: str) -> str:
    """WebhookDB's encryption (tests build WebhookDB-shaped databases with it)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(_BLOCK))).encryptor()
    return base64.urlsafe_b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt(key: bytes, ciphertext: str) -> str:
    """The refresh token, or WebhookDbDecryptError. A wrong key shows as bad padding or as bytes
    that are not a token (refresh tokens are printable ASCII)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        raw = _b64(ciphertext)
    except (binascii.Error, ValueError):
        raise WebhookDbDecryptError("the stored value is not URL-safe base64") from None
    if not raw or len(raw) % _BLOCK:
        raise WebhookDbDecryptError(f"the stored value is {len(raw)} bytes, not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(_BLOCK))).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise WebhookDbDecryptError("bad padding: wrong key or damaged value") from None
    if not plain or not all(0x21 <= b <= 0x7E for b in plain):
        raise WebhookDbDecryptError("decrypts to something that is not a token: wrong key or damaged value")
    return plain.decode("ascii")

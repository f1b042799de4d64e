"""Minimal RS256 JWT minting plus the JWKS document that publishes the key."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .util import b64url, dumps


class Signer:
    """One RSA key per simulator: id tokens and access tokens are real, verifiable JWTs."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.key.public_key().public_numbers()
        self.kid = b64url(hashlib.sha256(str(pub.n).encode()).digest()[:15])
        self._jwk = {
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": b64url(pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")),
            "e": b64url(pub.e.to_bytes(3, "big")),
        }

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        header = {"typ": typ, "alg": "RS256", "kid": self.kid, "x5t": self.kid}
        head = b64url(dumps(header))
        body = b64url(dumps(claims))
        sig = self.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(sig)}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

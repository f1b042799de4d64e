"""The webhook signature: HMAC-SHA256 over "<timestamp>.<body>" with the endpoint's secret.

Headers of every delivery:
    Webhook-Id:        the message's de-duplication id
    Webhook-Timestamp: Unix seconds when this attempt was signed
    Webhook-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
A receiver recomputes the HMAC over the raw body it received, compares in
constant time and rejects timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac

ID_HEADER = "Webhook-Id"
TIMESTAMP_HEADER = "Webhook-Timestamp"
SIGNATURE_HEADER = "Webhook-Signature"
SCHEMA_HEADER = "Webhook-Schema"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does (docs/CHANGE_FEED.md shows the same in a few lines)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)

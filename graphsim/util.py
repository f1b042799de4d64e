"""Shared helpers: Graph-style ids, timestamps and the OData error envelope."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from typing import Any

UTC = dt.UTC


def new_guid() -> str:
    return str(uuid.uuid4())


def new_item_id(prefix: bytes = b"\x00\x00\x00\x00") -> str:
    """Outlook-like opaque id (base64, 'AAMkA...' flavour); urlsafe so it is path-safe."""
    raw = b"\x00\x03" + b"\x24" + prefix + os.urandom(30)
    return base64.urlsafe_b64encode(raw).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso_z(t: dt.datetime) -> str:
    """Timestamp as Graph writes createdDateTime etc.: UTC, 7 fractional digits, 'Z'."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def iso_offset(t: dt.datetime) -> str:
    """Timestamp as change notifications carry subscriptionExpirationDateTime: 7 digits, +00:00."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0+00:00"


def iso_seconds(t: dt.datetime) -> str:
    """Timestamp as Outlook messages carry them: UTC, whole seconds, 'Z'."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC (Graph's rule for query windows)."""
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits: Graph sends 7.
    if "." in s:
        head, frac = s.split(".", 1)
        digits = ""
        rest = ""
        for i, ch in enumerate(frac):
            if ch.isdigit():
                digits += ch
            else:
                rest = frac[i:]
                break
        s = head + ("." + digits[:6] if digits else "") + rest
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


class GraphError(Exception):
    """An error answered in Graph's OData envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 inner_code: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.inner_code = inner_code
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str, client_request_id: str | None) -> dict[str, Any]:
        inner = {"code": self.inner_code} if self.inner_code else {}
        return {"error": {"code": self.code, "message": self.message, "innerError": {
            **inner, "date": now().strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }}}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()

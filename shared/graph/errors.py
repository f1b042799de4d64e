"""Typed Graph errors, parsed from the OData error envelope.

Callers branch on `status` and `code` (Graph's own error code, e.g.
`ResourceNotFound`, `SyncStateNotFound`, `ErrorItemNotFound`), never on text.
"""

from __future__ import annotations

from typing import Any

from shared.jsontypes import JsonValue


class GraphError(Exception):
    """A Graph request failed for good (after the retries it was allowed).

    `status` is the HTTP status, or None when no response arrived (network
    error, timeout: `code` is then `NetworkError` or `Timeout`).
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
        body: JsonValue = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.method = method
        self.url = url
        self.body = body
        self.attempts = attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.method} {_strip_query(self.url)})" if self.method and self.url else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        rid = f" [request-id {self.request_id}]" if self.request_id else ""
        status = self.status if self.status is not None else "no response"
        return f"Graph {status} {self.code}: {self.message}{where}{tries}{rid}"

    def to_dict(self) -> dict[str, Any]:
        """The error as an API answer: Graph's code and message plus our context."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
            "retryAfter": self.retry_after,
            "attempts": self.attempts,
        }


class ThrottledError(GraphError):
    """Graph kept answering 429 (or 503 with Retry-After) after every allowed retry."""


class ForeignHostError(GraphError, ValueError):
    """An absolute URL pointed outside the configured Graph host: refused so the token never leaves it."""

    def __init__(self, url: str, base_url: str, reason: str = "another host") -> None:
        super().__init__(
            400,
            "ForeignHostRefused",
            f"refusing to send a Graph request to {_origin(url)} ({reason}): only {_origin(base_url)} "
            "(the configured Graph base) may be called",
            url=None,
        )


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else repr(url)


def _strip_query(url: str | None) -> str:
    # Query strings may carry skip/delta tokens: keep messages short and tokens out of logs.
    return (url or "").split("?", 1)[0]


def parse_error_body(body: object) -> tuple[str | None, str | None, str | None]:
    """(code, message, request-id) from `{"error":{"code","message","innerError":{"request-id"}}}`."""
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error")
    if isinstance(error, str):  # identity-platform style {"error": "...", "error_description": "..."}
        return error, body.get("error_description"), None
    if not isinstance(error, dict):
        return None, None, None
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = inner.get("request-id") if isinstance(inner, dict) else None
    return error.get("code"), error.get("message"), request_id

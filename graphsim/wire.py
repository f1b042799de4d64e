"""Small request/response types shared by the identity, Graph and control front ends."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .util import GraphError, dumps


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]            # keys lower-cased; first value wins
    raw_query: str
    headers: dict[str, str]          # keys lower-cased
    body: bytes = b""
    _json: Any = field(default=None, repr=False)
    _prefer: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
        parts = urllib.parse.urlsplit(target)
        query: dict[str, str] = {}
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(k.lower(), v)
        return cls(method.upper(), parts.path, query, parts.query,
                   {k.lower(): v for k, v in headers.items()}, body)

    def json(self) -> Any:
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.body)
                except ValueError:
                    raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                                     "Content-Type header is set and payload is of valid JSON format.") from None
        return self._json

    def prefer(self) -> dict[str, str]:
        """Prefer header(s) -> {lowercased name: unquoted value} (parsed once per request)."""
        if self._prefer is None:
            out: dict[str, str] = {}
            for part in self.headers.get("prefer", "").split(","):
                if not part.strip():
                    continue
                name, _, value = part.strip().partition("=")
                out[name.strip().lower()] = value.strip().strip('"')
            self._prefer = out
        return self._prefer


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    template: str | None = None   # normalized route for counters

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
                             "charset=utf-8"}
        h.update(headers or {})
        return cls(status, dumps(obj), h)

"""The one way an HTTP trigger reads a JSON body: bounded, and every failure a 4xx with a message.

`json.loads` alone lets hostile bodies through to code that cannot cope:
nesting ~1,000 levels deep raises RecursionError, and an escaped unpaired
surrogate (`"\\ud800"`) becomes a str that fails on the first `.encode()`
(HMAC, SQL, logging). Both are refused here, before any handler sees them.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from shared.jsontypes import JsonValue

MAX_DEPTH = 64  # Graph notifications nest ~4 levels, action inputs a few more


class BodyError(ValueError):
    """A body that is not acceptable JSON; `status` is the HTTP answer (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def parse(body: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> JsonValue:
    """The JSON value of `body`; BodyError when it is too big, not JSON, too deep or not valid Unicode."""
    if len(body) > max_bytes:
        raise BodyError(f"body over {max_bytes} bytes", 413)
    try:
        doc = json.loads(body)
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"malformed JSON: {str(exc)[:200]}") from None
    check(doc, max_depth)
    return doc


def check(doc: JsonValue, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth` and strings (values or keys) with unpaired surrogates."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _text(value)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise BodyError(f"JSON nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                for key in value:
                    _text(key)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


def _text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError("JSON text contains an unpaired UTF-16 surrogate") from None


def plain_text(value: object, max_chars: int) -> TypeGuard[str]:
    """A non-empty single-line string of at most `max_chars` without control characters or unpaired
    surrogates (ids, hints): what every backend stores and every header or URL carries unchanged
    (PostgreSQL refuses NUL, UTF-8 refuses surrogates)."""
    return (isinstance(value, str) and 0 < len(value) <= max_chars
            and not any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value))

"""Ids in Graph paths: every id is exactly one path segment.

An id comes from a caller or from Graph; either way it must not add a path
level ('/' is escaped) or climb one ('.' and '..' are refused: servers and
urllib3 resolve them, so `calendars/..` would address `/me`). One helper for
every f-string that builds a Graph path.
"""

from __future__ import annotations

from urllib.parse import quote

SAFE = "@="  # kept as is: principal names (a@b) and base64 padding are valid path characters


class InvalidSegment(ValueError):
    """An id that cannot be one path segment."""


def segment(value: str) -> str:
    """`value` percent-encoded as one path segment; InvalidSegment for '', '.', '..' or non-text."""
    if not isinstance(value, str) or not value:
        raise InvalidSegment("an id must be non-empty text")
    if value in (".", ".."):
        raise InvalidSegment(f"{value!r} is not a valid id")
    try:
        return quote(value, safe=SAFE)
    except UnicodeEncodeError:
        raise InvalidSegment("an id must be valid Unicode text (no unpaired surrogates)") from None

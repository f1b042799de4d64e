"""Azure Table Storage key and property encoding (pure functions, no SDK import).

Keys: PartitionKey and RowKey may not hold `/ \\ # ?` nor control characters
(U+0000-U+001F, U+007F-U+009F). Such characters, plus `%` (the escape itself)
and `:` (our separator between key parts), are written `%XX` with the
character's two uppercase hex digits; every other character, including `+`
and `=` from Graph's base64-like ids, is kept. `decode_key(encode_key(s)) == s`
for every string. A key is at most 1 KiB, i.e. 512 UTF-16 code units once
encoded; a longer one is refused with `KeyTooLong` (a client's mistake, 4xx)
before any request leaves.

Data: a property holds at most 32,767 UTF-16 code units, so the JSON text is
cut into `data_0 .. data_<n-1>` slices of at most 30,000 code units (never
splitting a surrogate pair), with `data_parts = n`. Text over
`BLOB_THRESHOLD_BYTES` (UTF-16, well under the 1 MiB entity limit) goes to a
blob instead and the entity keeps `data_blob` (the blob name); nothing is
ever truncated.
"""

from __future__ import annotations

import re

_ESCAPED = set("/\\#?%:") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
_ESCAPE = re.compile(r"%([0-9A-F]{2})")
SLICE_UNITS = 30_000
MAX_PROPERTY_UNITS = 32_767  # one string property, in UTF-16 code units
BLOB_THRESHOLD_BYTES = 800_000
MAX_KEY_UNITS = 512  # 1 KiB of UTF-16: what Table Storage (and Azurite) accept per key


class KeyTooLong(ValueError):
    """An id too long to be a Table Storage key: refused as bad input, never sent to the service."""


def encode_key(value: str) -> str:
    """Reversible escape of the characters Table Storage keys may not hold."""
    return checked_key("".join(f"%{ord(ch):02X}" if ch in _ESCAPED else ch for ch in value))


def checked_key(key: str) -> str:
    """`key` if Table Storage can hold it, else `KeyTooLong`."""
    units = utf16_units(key)
    if units > MAX_KEY_UNITS:
        raise KeyTooLong(f"id too long: {units} UTF-16 units once encoded"
                         f" (Table Storage keys hold at most {MAX_KEY_UNITS})")
    return key


def decode_key(value: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def utf16_units(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def split_text(text: str, units: int = SLICE_UNITS) -> list[str]:
    """Slices of at most `units` UTF-16 code units; a surrogate pair is never cut."""
    raw = text.encode("utf-16-le", "surrogatepass")
    size = units * 2
    parts, start = [], 0
    while start < len(raw):
        end = min(start + size, len(raw))
        if end < len(raw) and 0xD800 <= int.from_bytes(raw[end - 2:end], "little") <= 0xDBFF:
            end -= 2
        parts.append(raw[start:end].decode("utf-16-le", "surrogatepass"))
        start = end
    return parts or [""]


def needs_blob(text: str) -> bool:
    return utf16_units(text) * 2 > BLOB_THRESHOLD_BYTES

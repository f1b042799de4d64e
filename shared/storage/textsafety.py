"""Hostile text from Graph: keep what the backend can store, degrade (and say so) what it cannot.

Graph's JSON may carry text no database takes as is: an unpaired UTF-16
surrogate (a JSON `\\ud800` escape), a NUL, or a subject longer than one
Table Storage property (32,767 UTF-16 units). One such event must never stop
a mailbox, so each backend declares what it can hold (`TextRules`) and
`clean_row` adapts the row to it:

- the data keeps such text losslessly wherever the backend can (SQLite and
  Table Storage store the canonical JSON with `\\uXXXX` escapes); PostgreSQL's
  jsonb refuses `\\u0000` and unpaired surrogates, so there they become U+FFFD;
- text columns (subject, names...) are bound as UTF-8 strings: an unpaired
  surrogate becomes U+FFFD everywhere, a NUL where the backend refuses it, and a
  value over the backend's column limit is cut (the data keeps it whole);
- whatever was changed is listed on the row, in the data under `DEGRADED_KEY`
  (e.g. `["data:subject", "column:subject"]`), so a reader knows the row is not
  byte for byte what Graph sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from shared.jsontypes import JsonValue
from shared.storage.tablekeys import utf16_units

DEGRADED_KEY = "_replica_degraded"
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_NUL = re.compile("\x00")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass(frozen=True)
class TextRules:
    """What one backend stores as is."""

    nul: bool = True                  # NUL inside text and JSON
    surrogates_in_data: bool = True   # unpaired surrogates inside the JSON data (as escapes)
    column_units: int | None = None   # longest text column, in UTF-16 code units


AS_IS = TextRules()  # a backend that stores every text


def _cut(text: str, units: int) -> str:
    """At most `units` UTF-16 code units, never half a pair."""
    out, used = [], 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > units:
            break
        out.append(ch)
        used += size
    return "".join(out)


def _clean_value(value: JsonValue, pattern: re.Pattern[str], path: str, changed: list[str]) -> JsonValue:
    if isinstance(value, str):
        if pattern.search(value):
            changed.append(path)
            return pattern.sub(REPLACEMENT, value)
        return value
    if isinstance(value, dict):
        return {_clean_value(k, pattern, path, changed) if isinstance(k, str) else k:
                _clean_value(v, pattern, f"{path}.{k}" if path else str(k), changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_value(v, pattern, f"{path}[{i}]", changed) for i, v in enumerate(value)]
    return value


def dumps(data: object) -> str:
    """Canonical JSON (sorted keys, compact); see `_dumps`."""
    return _dumps(data)[0]


def _dumps(data: object) -> tuple[str, bool]:
    """(canonical JSON, whether the fallback was needed). orjson refuses unpaired surrogates (and
    integers over 64 bits): those rare rows are written by the json module with `\\uXXXX` escapes,
    which keeps them losslessly."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode("utf-8"), False
    except orjson.JSONEncodeError:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True), True


def clean_data(data: dict[str, Any], rules: TextRules) -> tuple[dict[str, Any], str, list[str]]:
    """(data as stored, its canonical text, the JSON paths that had to change)."""
    text, fallback = _dumps(data)
    refuse_nul = not rules.nul and "\\u0000" in text
    refuse_surrogates = not rules.surrogates_in_data and fallback and _has_surrogate_escape(text)
    if not refuse_nul and not refuse_surrogates:
        return data, text, []
    pattern = _NUL_OR_SURROGATE if refuse_nul and refuse_surrogates else _SURROGATE if refuse_surrogates else _NUL
    changed: list[str] = []
    cleaned = _clean_value(data, pattern, "", changed)
    return cleaned, dumps(cleaned), changed


def _has_surrogate_escape(text: str) -> bool:
    return _SURROGATE_ESCAPE.search(text) is not None


def clean_columns(values: dict[str, Any], rules: TextRules) -> list[str]:
    """Make every text column storable, in place; returns the names of those changed."""
    pattern = _SURROGATE if rules.nul else _NUL_OR_SURROGATE
    changed = []
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        new = pattern.sub(REPLACEMENT, value) if pattern.search(value) else value
        if rules.column_units is not None and len(new) * 2 > rules.column_units and \
                utf16_units(new) > rules.column_units:
            new = _cut(new, rules.column_units)
        if new is not value:
            values[name] = new
            changed.append(name)
    return changed

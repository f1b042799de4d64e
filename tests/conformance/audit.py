"""Audit what Microsoft's msgraph-sdk made of each simulator response.

kiota's JSON parse node puts every key the v1.0 model does not declare into `additional_data` and reads
an enum member it does not know as None. Walking the parsed model next to the raw JSON therefore finds
both: properties outside v1.0 and enum values the models cannot read.
"""

from __future__ import annotations

import enum
from typing import Any

from kiota_abstractions.serialization import Parsable

# Instance annotations Graph itself sends on the resources served here.
ANNOTATIONS = {"@odata.context", "@odata.etag", "@odata.id", "@odata.type", "@odata.count", "@odata.nextLink",
               "@odata.deltaLink", "@removed"}


def _attr(fn: Any) -> str:
    """The model attribute a field deserializer sets: `setattr(self, '<attr>', n.get_...())`."""
    return next(c for c in fn.__code__.co_consts if isinstance(c, str))


def audit(model: Any, raw: Any, path: str = "$") -> list[str]:
    """Problems found in `model` (parsed by the SDK) against `raw` (the JSON it was parsed from)."""
    problems: list[str] = []
    if isinstance(model, list):
        for i, (m, r) in enumerate(zip(model, raw if isinstance(raw, list) else [], strict=False)):
            problems += audit(m, r, f"{path}[{i}]")
        return problems
    if not isinstance(model, Parsable) or not isinstance(raw, dict):
        return problems
    extra = getattr(model, "additional_data", None) or {}
    for key in extra:
        if key not in ANNOTATIONS:
            problems.append(f"{path}.{key}: not a property of {type(model).__name__} in v1.0")
    for key, fn in model.get_field_deserializers().items():
        value = raw.get(key)
        if value is None or key == "@odata.type":
            continue
        parsed = getattr(model, _attr(fn), None)
        if parsed is None:
            problems.append(f"{path}.{key}: {value!r} unreadable by the model")
        elif isinstance(parsed, list) and isinstance(value, list):
            for i, (p, v) in enumerate(zip(parsed, value, strict=False)):
                if p is None and v is not None:
                    problems.append(f"{path}.{key}[{i}]: {v!r} unreadable by the model")
                elif isinstance(p, Parsable):
                    problems += audit(p, v, f"{path}.{key}[{i}]")
        elif isinstance(parsed, Parsable):
            problems += audit(parsed, value, f"{path}.{key}")
        elif isinstance(parsed, enum.Enum) and parsed.value != value:
            problems.append(f"{path}.{key}: {value!r} is not the canonical spelling {parsed.value!r}")
    return problems

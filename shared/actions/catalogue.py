"""The one declarative action catalogue: Python, HTTP and CLI all read it.

An `Action` names itself (seed label and slug), describes its inputs
(name, type, default, required, help, choices) and points at the function.
`parse_inputs` turns JSON values or CLI strings into typed values with one
set of rules, so the three surfaces cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.jsontypes import JsonValue

if TYPE_CHECKING:
    from shared.actions.context import ActionContext

INPUT_TYPES = ("string", "integer", "boolean", "datetime", "list", "object", "json")


class InputError(ValueError):
    """A bad action input; `input` names it (HTTP 400, CLI exit 1)."""

    def __init__(self, input_name: str | None, message: str) -> None:
        super().__init__(f"{input_name}: {message}" if input_name else message)
        self.input = input_name
        self.message = message


@dataclass(frozen=True)
class Input:
    """One action input. `label` is the connector's wording; `name` is the key callers send."""

    name: str
    type: str = "string"
    label: str = ""
    default: JsonValue = None
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in INPUT_TYPES:
            raise ValueError(f"input {self.name}: unknown type {self.type}")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label or self.name, "type": self.type,
                               "required": self.required, "default": self.default, "help": self.help}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out


@dataclass(frozen=True)
class Action:
    """One operation on Outlook. `needs_user`: it addresses a mailbox (/me or /users/{id})."""

    name: str
    slug: str
    area: str
    description: str
    inputs: tuple[Input, ...]
    function: Callable[[ActionContext, dict[str, Any]], Any] = field(compare=False)
    needs_user: bool = True
    aliases: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "slug": self.slug, "area": self.area, "description": self.description,
                "needsUser": self.needs_user, "aliases": list(self.aliases),
                "inputs": [i.describe() for i in self.inputs]}


@dataclass(frozen=True)
class Binary:
    """A binary result (raw request with response type binary): surfaces return it as bytes."""

    content: bytes
    content_type: str = "application/octet-stream"
    status: int = 200


ACTIONS: dict[str, Action] = {}
_LOOKUP: dict[str, str] = {}


def key(text: str) -> str:
    """'Calendar ID', 'calendarId', 'calendar-id' -> 'calendar_id' (how inputs and actions are matched)."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def action(name: str, description: str, *inputs: Input, area: str, needs_user: bool = True,
           aliases: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the action `name` (slug derived from it)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        slug = key(name).replace("_", "-")
        names = [i.name for i in inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate input names")
        act = Action(name, slug, area, description, tuple(inputs), function, needs_user, tuple(aliases))
        for label in (name, slug, *act.aliases):
            k = key(label)
            if _LOOKUP.get(k, slug) != slug:
                raise ValueError(f"action name {label!r} is already taken")
            _LOOKUP[k] = slug
        ACTIONS[slug] = act
        return function

    return register


def get_action(name_or_slug: str) -> Action:
    """The action by slug, seed name or alias (case and punctuation insensitive)."""
    slug = _LOOKUP.get(key(name_or_slug))
    if slug is None:
        raise KeyError(name_or_slug)
    return ACTIONS[slug]


# --- input parsing ---------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(spec: Input, value: JsonValue) -> JsonValue:
    t = spec.type
    if t == "string":
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise InputError(spec.name, "expected a string")
    if t == "integer":
        if isinstance(value, bool):
            raise InputError(spec.name, "expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise InputError(spec.name, f"expected an integer, got {value!r}")
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InputError(spec.name, f"expected true or false, got {value!r}")
    if t == "datetime":
        if not isinstance(value, str):
            raise InputError(spec.name, "expected an ISO 8601 timestamp such as 2025-03-01T09:30:00")
        parse_timestamp(value.strip(), spec.name)
        return value.strip()
    if t == "list":
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = _json(spec, text)
            else:
                return [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return list(value)
        raise InputError(spec.name, "expected a list (JSON array or comma-separated)")
    if t == "object":
        if isinstance(value, str):
            value = _json(spec, value)
        if isinstance(value, list) and all(isinstance(i, dict) and "key" in i for i in value):
            return {str(i["key"]): i.get("value") for i in value}  # [{"key","value"}] as in the connector
        if isinstance(value, Mapping):
            return dict(value)
        raise InputError(spec.name, "expected a JSON object (or a list of {key, value})")
    # json: anything JSON can hold; a string that parses as JSON is parsed, other strings stay text
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def strings(value: list[Any] | None, name: str) -> list[str]:
    """A list input whose items must be text (addresses, change types): anything else is an InputError."""
    items = list(value or [])
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise InputError(name, f"expected a list of strings, got the item {json.dumps(bad[0], default=str)[:64]}")
    return items


def parse_timestamp(at: str, name: str) -> dt.datetime:
    """An ISO 8601 input (`Z` accepted), or an InputError naming the input."""
    try:
        return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(name, f"{at!r} is not an ISO 8601 timestamp (e.g. 2025-03-01T09:30:00)") from None


def _json(spec: Input, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(spec.name, f"invalid JSON ({exc})") from None


def parse_inputs(act: Action, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed inputs with defaults; unknown, missing or malformed inputs raise InputError naming them."""
    by_key: dict[str, Input] = {}
    for spec in act.inputs:
        for label in (spec.name, spec.label, *spec.aliases):
            if label:
                by_key[key(label)] = spec
    values: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        found = by_key.get(key(str(name)))
        if found is None:
            known = ", ".join(i.name for i in act.inputs) or "none"
            raise InputError(str(name), f"unknown input of {act.slug} (inputs: {known})")
        spec = found
        if spec.name in values:
            raise InputError(spec.name, "given twice")
        if value is None:
            continue
        coerced = _coerce(spec, value)
        if spec.choices:
            match = next((c for c in spec.choices if c.lower() == str(coerced).lower()), None)
            if match is None:
                raise InputError(spec.name, f"{coerced!r} is not one of {', '.join(spec.choices)}")
            coerced = match
        values[spec.name] = coerced
    for spec in act.inputs:
        if spec.name not in values:
            if spec.required and spec.default is None:
                raise InputError(spec.name, "is required")
            values[spec.name] = spec.default
        elif spec.required and values[spec.name] in ("", [], {}):
            raise InputError(spec.name, "must not be empty")
    return values


# --- shared input definitions (one wording for the same input everywhere) -------------------
def paging_inputs() -> tuple[Input, ...]:
    return (
        Input("page_limit", "integer", "Page Limit", help="Enter number for desired page size ($top)."),
        Input("page_skip", "integer", "Page Skip", help="Enter number of records to skip ($skip)."),
        Input("fetch_all", "boolean", "Fetch All", False,
              help="Fetch all pages of results; ignores page limit and page skip."),
    )


def time_inputs(required: bool = False) -> tuple[Input, ...]:
    zone_help = ("Time zone of {0}: a Windows or IANA name; see the List Supported Timezones action "
                 "for the values this user's mailbox accepts.")
    at_help = "ISO timestamp without time zone (2025-03-01T09:30:00); a Z/offset value is converted to UTC."
    return (
        Input("start_at", "datetime", "Start At", required=required, help=at_help),
        Input("start_timezone", "string", "Start Timezone", "UTC", help=zone_help.format("Start At")),
        Input("end_at", "datetime", "End At", required=required, help=at_help),
        Input("end_timezone", "string", "End Timezone", "UTC", help=zone_help.format("End At")),
    )

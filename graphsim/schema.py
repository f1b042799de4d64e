"""Request-body validation against the Graph v1.0 types (graph_schema.json, generated from msgraph-sdk).

Graph's OData reader rejects a body with an unknown property, a value of the wrong JSON kind or an
enum member that does not exist (400 RequestBodyRead) and reads enum members case-insensitively,
storing the canonical spelling. Action parameters (sendMail, getSchedule, cancel) are matched
case-insensitively. ``validate``/``action`` answer the normalised body.
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

from .util import GraphError, parse_iso

_EDM = {"string": "Edm.String", "boolean": "Edm.Boolean", "int": "Edm.Int32", "number": "Edm.Double",
        "datetime": "Edm.DateTimeOffset", "date": "Edm.Date", "time": "Edm.TimeOfDay",
        "duration": "Edm.Duration", "guid": "Edm.Guid", "binary": "Edm.Binary"}


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads((pathlib.Path(__file__).parent / "graph_schema.json").read_text())


@functools.cache
def _enum(name: str) -> dict[str, str]:
    return {m.lower(): m for m in schema()["enums"][name]}


def props(type_name: str) -> dict[str, Any]:
    """Property name -> kind of a v1.0 type (empty for types the simulator does not serve)."""
    return schema()["types"].get(type_name, {}).get("props", {})


def _bad(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def _node(value: Any) -> str:
    return "StartArray" if isinstance(value, list) else "StartObject" if isinstance(value, dict) else \
        "PrimitiveValue"


def _literal(value: Any, kind: str) -> GraphError:
    return _bad(f"Cannot convert the literal '{value}' to the expected type '{_EDM.get(kind, kind)}'.")


def _primitive(value: Any, kind: str) -> Any:
    if isinstance(value, (dict, list)):
        raise _bad(f"An unexpected '{_node(value)}' node was found when reading from the JSON reader. "
                   "A 'PrimitiveValue' node was expected.")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _literal(value, kind)
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31:
            raise _literal(value, kind)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _literal(value, kind)
    elif not isinstance(value, str):
        raise _bad(f"Cannot convert a primitive value to the expected type '{_EDM.get(kind, kind)}'.")
    elif kind == "datetime":
        try:
            parse_iso(value)
        except ValueError:
            raise _literal(value, kind) from None
    return value


def _value(value: Any, kind: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise _bad(f"An unexpected '{_node(value)}' node was found when reading from the JSON reader. "
                       "A 'StartArray' node was expected.")
        return [_value(v, kind[0], where) for v in value]
    if kind.startswith("enum:"):
        if not isinstance(value, str):
            raise _bad(f"Cannot convert the literal '{value}' to the expected type "
                       f"'microsoft.graph.{kind[5:]}'.")
        members = _enum(kind[5:])
        # Graph reads enum members case-insensitively and stores the canonical spelling.
        canonical = members.get(value.strip().lower())
        if canonical is None:
            raise _bad(f"Requested value '{value}' was not found.")
        return canonical
    if kind in _EDM:
        return _primitive(value, kind)
    if not isinstance(value, dict):
        raise _bad(f"An unexpected '{_node(value)}' node was found when reading from the JSON reader. "
                   "A 'StartObject' node was expected.")
    return validate(value, kind)


def validate(body: Any, type_name: str) -> dict[str, Any]:
    """`body` checked as a `type_name` (an @odata.type naming a derived type switches to it)."""
    if not isinstance(body, dict):
        raise _bad(f"An unexpected '{_node(body)}' node was found when reading from the JSON reader. "
                   "A 'StartObject' node was expected.")
    entry = schema()["types"].get(type_name)
    if entry is None or entry.get("opaque"):
        return body
    odata_type = body.get("@odata.type")
    if isinstance(odata_type, str) and odata_type.lstrip("#") != f"microsoft.graph.{type_name}":
        derived = entry.get("derived", {}).get("#" + odata_type.lstrip("#"))
        if derived is None:
            raise _bad(f"A type named '{odata_type.lstrip('#')}' could not be resolved by the model. When a "
                       "model is available, each type name must resolve to a valid type.")
        return validate(body, derived)
    kinds = entry["props"]
    out: dict[str, Any] = {}
    for key, value in body.items():
        if "@" in key:      # instance / property annotations (@odata.type, subject@odata.type, ...)
            out[key] = value
            continue
        kind = kinds.get(key)
        if kind is None:
            raise _bad(f"The property '{key}' does not exist on type 'microsoft.graph.{type_name}'. Make sure "
                       "to only use property names that are defined by the type or mark the type as open "
                       "type.")
        out[key] = _value(value, kind, key)
    return out


def action(body: Any, name: str) -> dict[str, Any]:
    """An action's parameters, names matched case-insensitively, answered in camelCase."""
    if not isinstance(body, dict):
        raise _bad("The parameter payload is not a JSON object.")
    params = {p.lower(): (p, kind) for p, kind in schema()["actions"][name].items()}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if "@" in key:
            continue
        found = params.get(key.lower())
        if found is None:
            raise GraphError(400, "BadRequest", f"The parameter '{key}' in the request payload is not a valid "
                             f"parameter for the operation '{name}'.")
        pname, kind = found
        out[pname[0].lower() + pname[1:]] = _value(value, kind, pname)
    return out

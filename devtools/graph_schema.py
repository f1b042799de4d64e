"""Generate graphsim/graph_schema.json from Microsoft's msgraph-sdk models (dev only).

The simulator validates request bodies and its own responses against the v1.0 types it serves. Rather
than a hand-written list, the property names, JSON kinds and enum members come from the models
Microsoft generates from the Graph v1.0 metadata: each model's ``get_field_deserializers`` names every
property and the parse-node method (and model/enum class) that reads it. The committed JSON keeps the
simulator free of the SDK at run time; tests/graphsim/test_schema.py checks it is up to date.

    .venv/bin/python -m devtools.graph_schema          # rewrite graphsim/graph_schema.json
"""

from __future__ import annotations

import enum
import importlib
import json
import pathlib
import sys
from typing import Any

OUT = pathlib.Path(__file__).resolve().parent.parent / "graphsim" / "graph_schema.json"

# Entity types the simulator serves (expanded with every complex type they reach).
ROOTS = ("event", "calendar", "message", "mail_folder", "subscription", "user", "schedule_information",
         "time_zone_information", "locale_info", "attachment", "file_attachment",
         "single_value_legacy_extended_property", "multi_value_legacy_extended_property")
# Action parameter bodies: name -> module under msgraph.generated (class is the module's only model).
ACTIONS = {
    "sendMail": "users.item.send_mail.send_mail_post_request_body.SendMailPostRequestBody",
    "getSchedule": "users.item.calendar.get_schedule.get_schedule_post_request_body.GetSchedulePostRequestBody",
    "cancel": "users.item.events.item.cancel.cancel_post_request_body.CancelPostRequestBody",
}
_PRIMITIVE = {"get_str_value": "string", "get_bool_value": "boolean", "get_int_value": "int",
              "get_float_value": "number", "get_datetime_value": "datetime", "get_date_value": "date",
              "get_time_value": "time", "get_timedelta_value": "duration", "get_uuid_value": "guid",
              "get_bytes_value": "binary"}
_PY_PRIMITIVE = {"str": "string", "bool": "boolean", "int": "int", "float": "number", "datetime": "datetime",
                 "date": "date", "time": "time", "timedelta": "duration", "UUID": "guid", "bytes": "binary"}


def _camel(name: str) -> str:
    return name[0].lower() + name[1:]


def _model(module: str) -> type:
    mod = importlib.import_module(f"msgraph.generated.models.{module}")
    cls_name = "".join(p.capitalize() for p in module.split("_"))
    return getattr(mod, cls_name)


def _is_entity(cls: type) -> bool:
    return any(b.__name__ == "Entity" for b in cls.__mro__)


class _Collector:
    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.enums: dict[str, list[str]] = {}
        self.roots = {_model(r) for r in ROOTS}

    def kind(self, fn: Any) -> str | list[str]:
        code = fn.__code__
        cells = {n: c.cell_contents for n, c in zip(code.co_freevars, fn.__closure__ or (), strict=True)}
        method = next(n for n in code.co_names if n.startswith("get_"))
        target = next((v for k, v in cells.items() if k != "self"), None)
        if target is None:   # the class is the method's own (self-reference) or a builtin: co_names
            names = [n for n in code.co_names if n not in ("setattr", method)]
            target = names[0] if names else None
            if isinstance(target, str) and target not in _PY_PRIMITIVE:
                target = type(cells["self"]) if type(cells["self"]).__name__ == target else target
        if method in _PRIMITIVE:
            return _PRIMITIVE[method]
        if method == "get_enum_value":
            return "enum:" + self.enum(target)
        if method == "get_collection_of_enum_values":
            return ["enum:" + self.enum(target)]
        if method == "get_collection_of_primitive_values":
            return [_PY_PRIMITIVE.get(target if isinstance(target, str) else target.__name__, "string")]
        if method == "get_object_value":
            return self.model(target)
        if method == "get_collection_of_object_values":
            return [self.model(target)]
        raise ValueError(f"unknown parse-node method {method}")

    def enum(self, cls: type[enum.Enum]) -> str:
        name = _camel(cls.__name__)
        self.enums.setdefault(name, [m.value for m in cls])
        return name

    def model(self, cls: type) -> str:
        name = _camel(cls.__name__)
        if name in self.types:
            return name
        if _is_entity(cls) and cls not in self.roots:
            self.types[name] = {"opaque": True}     # a navigation target the simulator does not serve
            return name
        entry: dict[str, Any] = {"props": {}}
        self.types[name] = entry
        for prop, fn in cls().get_field_deserializers().items():
            if prop != "@odata.type":
                entry["props"][prop] = self.kind(fn)
        derived = {}
        for sub in cls.__subclasses__():
            derived[f"#microsoft.graph.{_camel(sub.__name__)}"] = self.model(sub)
        if derived:
            entry["derived"] = derived
        return name


def build() -> dict[str, Any]:
    import msgraph

    col = _Collector()
    for r in ROOTS:
        col.model(_model(r))
    actions = {}
    for action, path in ACTIONS.items():
        module, cls_name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"msgraph.generated.{module}"), cls_name)
        actions[action] = {p: col.kind(fn) for p, fn in cls().get_field_deserializers().items()}
    version = getattr(msgraph, "__version__", None) or importlib.metadata.version("msgraph-sdk")
    return {"source": f"msgraph-sdk {version}", "types": dict(sorted(col.types.items())),
            "enums": dict(sorted(col.enums.items())), "actions": actions}


def render() -> str:
    return json.dumps(build(), indent=None, separators=(",", ":"), sort_keys=False) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.name}: {OUT.stat().st_size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

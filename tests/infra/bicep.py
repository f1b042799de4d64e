"""Helpers of the infra tests: the Bicep templates parsed with pycep-parser.

pycep renders a string literal and a reference to a parameter or variable the
same way (both as a plain string), so `literal_strings` tells them apart by
looking the name up among the file's parameters and variables.
"""

from __future__ import annotations

import json
import pathlib
from functools import cache
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PARAMETERS_FILE = INFRA / "main.parameters.json"


def bicep_files() -> list[pathlib.Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: pathlib.Path) -> dict[str, Any]:
    from pycep import BicepParser

    return BicepParser().parse(text=path.read_text(encoding="utf-8"))


def decorators(declaration: dict[str, Any]) -> dict[str, Any]:
    """A parameter's decorators as {type: argument}."""
    return {d["type"]: d.get("argument") for d in declaration.get("decorators", [])}


def is_required(declaration: dict[str, Any]) -> bool:
    """A parameter without a default must be supplied, unless azd generates it."""
    if declaration.get("default") is not None:
        return False
    metadata = decorators(declaration).get("metadata") or {}
    return (metadata.get("azd") or {}).get("type") != "generate"


def object_variable(template: dict[str, Any], name: str) -> dict[str, Any]:
    value = template["variables"][name]["value"]
    assert isinstance(value, dict), f"var {name} is not an object literal"
    return value


def names_in_scope(template: dict[str, Any]) -> set[str]:
    return set(template.get("parameters", {})) | set(template.get("variables", {}))


def is_literal(template: dict[str, Any], value: Any) -> bool:
    """A plain string that is not the name of a parameter or variable."""
    return isinstance(value, str) and "${" not in value and value not in names_in_scope(template)


def render(value: Any) -> str:
    """An expression as text, for substring checks (Key Vault references)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def module_declarations(template: dict[str, Any]) -> dict[str, tuple[pathlib.Path, dict[str, Any]]]:
    """Local modules of a template: name -> (file, params passed)."""
    found = {}
    for name, module in template.get("modules", {}).items():
        path = (INFRA / module["detail"]["path"]).resolve()
        config = module["config"]
        if "condition" in config:  # `module x '...' = if (cond) {...}`
            config = config["config"]
        found[name] = (path, config.get("params", {}))
    return found

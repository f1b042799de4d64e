"""Documents generated from `shared.config.SETTINGS`: the sample settings file and the README table.

Generated, so they cannot drift from the code (tests compare them).
"""

from __future__ import annotations

import json

from shared.config import SETTINGS, Setting

# Values the Functions host itself reads (not the app): Core Tools needs them locally.
PLATFORM_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def _placeholder(setting: Setting) -> str:
    """A safe local value: the default, or empty (unset) where there is none."""
    value: object = setting.default
    if value is None or setting.secret:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def sample_settings_json() -> str:
    values = dict(PLATFORM_VALUES)
    values.update({s.env: _placeholder(s) for s in SETTINGS})
    return json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n"


def settings_table() -> str:
    rows = ["| Setting | Default | What it is for |", "|---|---|---|"]
    for setting in SETTINGS:
        default = _placeholder(setting) or "—"
        where = "" if setting.deployed else " *(local only)*"
        rows.append(f"| `{setting.env}` | `{default}` | {setting.help}{where} Example: `{setting.example}` |")
    return "\n".join(rows) + "\n"

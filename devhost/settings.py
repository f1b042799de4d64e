"""local.settings.json and host.json, read the way the Functions host reads them."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_local_settings(path: Path | None = None) -> dict[str, str]:
    """Put local.settings.json `Values` into the environment (the environment wins)."""
    from shared import local_settings

    path = path or local_settings.LOCAL_SETTINGS
    if not path.exists():
        return {}
    try:
        return local_settings.apply(local_settings.read_values(path), os.environ)
    except local_settings.LocalSettingsError as exc:
        raise SystemExit(str(exc)) from None


def load_host_json(path: Path | None = None) -> dict[str, Any]:
    return json.loads((path or ROOT / "host.json").read_text())


def route_prefix(host: dict[str, Any]) -> str:
    return host.get("extensions", {}).get("http", {}).get("routePrefix", "api").strip("/")


def queue_options(host: dict[str, Any]) -> dict[str, Any]:
    """batchSize, newBatchThreshold, maxDequeueCount, visibilityTimeout and maxPollingInterval
    (seconds) with the Functions host's defaults."""
    queues = host.get("extensions", {}).get("queues", {})
    batch_size = int(queues.get("batchSize", 16))
    return {
        "batch_size": batch_size,
        "new_batch_threshold": int(queues.get("newBatchThreshold", batch_size // 2)),
        "max_dequeue_count": int(queues.get("maxDequeueCount", 5)),
        "visibility_timeout": _seconds(queues.get("visibilityTimeout", "00:00:00")),
        "max_polling_interval": _seconds(queues.get("maxPollingInterval", "00:01:00")),
    }


def _seconds(timespan: str) -> int:
    """A host.json TimeSpan ("hh:mm:ss") in seconds."""
    hours, minutes, seconds = (int(p) for p in timespan.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def function_keys(data_dir: Path | None = None) -> tuple[str, str]:
    """(function key, master key): from DEVHOST_FUNCTION_KEY / DEVHOST_MASTER_KEY, else
    generated once and kept in .data/devhost-keys.json (mode 0600)."""
    function_key = os.environ.get("DEVHOST_FUNCTION_KEY")
    master_key = os.environ.get("DEVHOST_MASTER_KEY")
    if function_key and master_key:
        return function_key, master_key
    from shared.local_settings import DEVHOST_KEYS

    store = (data_dir / DEVHOST_KEYS.name) if data_dir else DEVHOST_KEYS
    if store.exists():
        saved = json.loads(store.read_text())
    else:
        store.parent.mkdir(parents=True, exist_ok=True)
        saved = {"function": secrets.token_urlsafe(32), "master": secrets.token_urlsafe(32)}
        fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(saved, handle)
    return function_key or saved["function"], master_key or saved["master"]


def resolve_app_setting(value: str) -> str:
    """`%NAME%` binding expressions resolve from app settings (then the code's default)."""
    if not (value.startswith("%") and value.endswith("%")):
        return value
    name = value.strip("%")
    if name in os.environ:
        return os.environ[name]
    from shared.config import SETTINGS

    for setting in SETTINGS:
        if setting.env == name and setting.default is not None:
            return str(setting.default)
    raise SystemExit(f"app setting {name} is not set (used by a trigger binding)")

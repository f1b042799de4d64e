"""Where a local instance keeps its state, read the same way by `make run`, `func start` and the CLI.

On a developer machine the settings come from `local.settings.json` (its
`Values`, the environment winning), as Core Tools reads them. Without a
CLIENT_ID there, `make run` runs the demo against the Graph simulator; the demo
writes every setting it used (paths under .data/demo/, the simulator's
authority and Graph URL, client id, CA file) to `.data/demo/local.settings.json`
together with what it is (pid, URL, start time). The CLI applies the same rule
as `make run` — no CLIENT_ID, so the demo — which is why `python -m shared
status` in a second terminal talks to the running demo. In Azure neither file
exists and the app settings are the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from shared.config import Settings

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SETTINGS = ROOT / "local.settings.json"
DEMO_DIR = ROOT / ".data" / "demo"
DEMO_SETTINGS = DEMO_DIR / "local.settings.json"
DEVHOST_KEYS = ROOT / ".data" / "devhost-keys.json"


class LocalSettingsError(ValueError):
    """A local settings file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class LocalInstance:
    """What the settings of this process describe: the demo, a local.settings.json, or the environment."""

    kind: str  # "demo", "local" or "environment"
    settings_file: Path | None = None
    applied: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # the demo's pid, base_url, started_at, ...

    @property
    def pid(self) -> int | None:
        pid = self.details.get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def running(self) -> bool:
        """Whether the demo that wrote the settings is still up: its pid exists and its host's port answers.

        The pid alone is no proof. A demo killed before its parent reaped it (`make` killed with it) is a
        zombie that `kill(pid, 0)` still finds until init reaps it, and the pid in a record left by a
        crashed demo may belong to another process by now. A process that has exited holds no sockets,
        so the recorded URL refusing connections says the demo is gone.
        """
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by someone else: the port decides
        return _accepts_connections(self.details.get("base_url"))


def _accepts_connections(base_url: object, timeout: float = 5.0) -> bool:
    """Whether something listens at `base_url`'s host and port. The kernel completes the handshake however
    busy the host is; the timeout only covers a full accept backlog (a dropped SYN is sent again after 1 s).

    A record without a URL (written before the URL was recorded) is judged by its pid alone."""
    if not isinstance(base_url, str) or not base_url:
        return True
    parts = urlsplit(base_url)
    if not parts.hostname:
        return True
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def read_values(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-shaped file (comment entries and empty values dropped)."""
    return {k: v for k, v in _read(path).get("Values", {}).items()
            if not k.startswith("//") and v not in (None, "")}


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Values", {}), dict):
        raise LocalSettingsError(f"{path.name} must be an object with a Values object")
    return document


# The simulator's certificate can only be trusted through this variable, which shells often set to
# the system bundle: the demo's value replaces it (as it did in the demo's own process).
DEMO_PINNED = ("REQUESTS_CA_BUNDLE",)


def apply(values: Mapping[str, str], environ: MutableMapping[str, str], *,
          pinned: tuple[str, ...] = ()) -> dict[str, str]:
    """Put `values` into `environ` where it has no value yet (the environment wins, as in Core Tools);
    the `pinned` names are replaced whatever the environment says."""
    applied = {}
    for name, value in values.items():
        if name in pinned or name not in environ:
            environ[name] = str(value)
            applied[name] = str(value)
    return applied


def load(environ: MutableMapping[str, str] | None = None, *, root: Path | None = None) -> LocalInstance:
    """Apply the settings of the local instance `make run` runs to `environ` (default: os.environ).

    local.settings.json with a CLIENT_ID (or a CLIENT_ID in the environment): that file. Otherwise,
    if the demo has left its settings: the demo's (its CA file replacing REQUESTS_CA_BUNDLE).
    Otherwise local.settings.json as it is. The environment wins for every setting of the app.
    """
    env = os.environ if environ is None else environ
    local_file = (root / "local.settings.json") if root else LOCAL_SETTINGS
    demo_file = (root / ".data" / "demo" / "local.settings.json") if root else DEMO_SETTINGS
    local = read_values(local_file) if local_file.exists() else {}
    if not env.get("CLIENT_ID") and not local.get("CLIENT_ID") and demo_file.exists():
        document = _read(demo_file)
        values = {k: v for k, v in document.get("Values", {}).items() if v not in (None, "")}
        return LocalInstance("demo", demo_file, apply(values, env, pinned=DEMO_PINNED), document.get("Instance", {}))
    if local_file.exists():
        return LocalInstance("local", local_file, apply(local, env))
    return LocalInstance("environment")


def write_demo_settings(values: Mapping[str, str], details: Mapping[str, Any], path: Path | None = None) -> Path:
    """Record the demo's settings and identity where `load()` finds them (mode 0600: paths, not secrets)."""
    path = path or DEMO_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"IsEncrypted": False, "Values": dict(values),
                "Instance": {"kind": "demo", "pid": os.getpid(),
                             "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **details}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    return path


def demo_instance(settings: Settings, path: Path | None = None) -> LocalInstance | None:
    """The demo, when `settings` point at its database (whoever loaded them); None otherwise."""
    path = path or DEMO_SETTINGS
    if settings.database_backend != "sqlite" or not path.exists():
        return None
    try:
        document = _read(path)
    except LocalSettingsError:
        return None
    recorded = document.get("Values", {}).get("SQLITE_PATH")
    if not recorded or Path(recorded).resolve() != Path(settings.sqlite_path).resolve():
        return None
    return LocalInstance("demo", path, {}, document.get("Instance", {}))

"""The simulator in its own process, driven over its /_sim control API (graphsim/control.py).

In production Graph is another machine: run in the caller's process the simulator's
HTTPS server, JSON rendering and notification delivery share the caller's GIL and
slow down what a benchmark measures. `SimulatorProcess` starts `python -m graphsim`,
reads the one JSON line it prints, and offers the calls the benches make on an
in-process `GraphSimulator`, each one HTTPS request on a kept-alive connection.
"""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 60.0  # a busy two-core machine: imports, key and certificate generation


class SimulatorProcessError(RuntimeError):
    """The simulator process did not start, died, or refused a control call."""


@dataclass(frozen=True)
class SimulatorInfo:
    """What `python -m graphsim` prints on its first line."""

    base_url: str      # identity platform (authority host) and /_sim control API
    graph_url: str     # Graph v1.0 root
    ca_file: str       # PEM of the simulator's CA: REQUESTS_CA_BUNDLE for the app
    control_url: str

    @classmethod
    def parse(cls, line: str) -> SimulatorInfo:
        try:
            raw = json.loads(line)
            return cls(str(raw["base_url"]), str(raw["graph_url"]), str(raw["ca_file"]), str(raw["control_url"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SimulatorProcessError(f"graphsim printed {line!r}, not its JSON info line") from exc


class SimulatorProcess:
    """A `python -m graphsim` child process and a typed client of its control API."""

    def __init__(self, *, port: int = 0, https_notifications_only: bool = False,
                 extra_args: tuple[str, ...] = (), stderr: IO[str] | int | None = None,
                 call_timeout: float = 60.0) -> None:
        self._argv = [sys.executable, "-m", "graphsim", "--port", str(port), *extra_args]
        if https_notifications_only:
            self._argv.append("--https-notifications-only")
        self._stderr = stderr
        self._call_timeout = call_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._info: SimulatorInfo | None = None
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()  # one kept-alive connection, one call at a time

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> SimulatorProcess:
        if self._proc is not None:
            return self
        proc = subprocess.Popen(self._argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._proc = proc
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_drain, args=(proc.stdout, lines), name="graphsim-stdout", daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise SimulatorProcessError(f"graphsim printed nothing in {timeout:.0f} s") from None
        if not line:
            code = proc.wait(timeout=5)
            self._proc = None
            raise SimulatorProcessError(f"graphsim exited ({code}) before it printed its info line")
        self._info = SimulatorInfo.parse(line)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the simulator stops its server and delivery), then kill if it lingers."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise SimulatorProcessError("start() the simulator first")
        return self._proc.pid

    @property
    def info(self) -> SimulatorInfo:
        if self._info is None:
            raise SimulatorProcessError("start() the simulator first")
        return self._info

    @property
    def base_url(self) -> str:
        return self.info.base_url

    @property
    def graph_url(self) -> str:
        return self.info.graph_url

    @property
    def ca_file(self) -> str:
        return self.info.ca_file

    def authority(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}"

    # -- control calls (graphsim/control.py) ---------------------------------------------
    def create_tenant(self, tenant_id: str | None = None, domain: str | None = None) -> str:
        return str(self._call("POST", "tenants", {"tenant_id": tenant_id, "domain": domain})["tenant_id"])

    def register_app(self, tenant: str, client_id: str | None = None, client_secret: str | None = None,
                     redirect_uris: list[str] | None = None, application_permissions: list[str] | None = None,
                     delegated_permissions: list[str] | None = None) -> tuple[str, str]:
        found = self._call("POST", "apps", {
            "tenant": tenant, "client_id": client_id, "client_secret": client_secret,
            "redirect_uris": redirect_uris, "application_permissions": application_permissions,
            "delegated_permissions": delegated_permissions})
        return str(found["client_id"]), str(found["client_secret"])

    def create_user(self, tenant: str, display_name: str | None = None, user_principal_name: str | None = None,
                    consent: bool = True, user_id: str | None = None, time_zone: str = "UTC") -> str:
        return str(self._call("POST", "users", {
            "tenant": tenant, "display_name": display_name, "user_principal_name": user_principal_name,
            "consent": consent, "user_id": user_id, "time_zone": time_zone})["user_id"])

    def set_consent_user(self, tenant: str, user_id: str) -> None:
        self._call("POST", "consent-user", {"tenant": tenant, "user_id": user_id})

    def create_event(self, user: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"users/{_seg(user)}/events", fields)

    def create_events(self, user: str, bodies: list[dict[str, Any]], calendar_id: str | None = None) -> list[str]:
        found = self._call("POST", f"users/{_seg(user)}/events/bulk", {"events": bodies, "calendar_id": calendar_id})
        return [str(i) for i in found["ids"]]

    def update_event(self, user: str, event_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"users/{_seg(user)}/events/{_seg(event_id)}", fields)

    def delete_event(self, user: str, event_id: str) -> None:
        self._call("DELETE", f"users/{_seg(user)}/events/{_seg(event_id)}", {})

    def list_subscriptions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "subscriptions")["value"])

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every notification POST the simulator made (url, status, ok, elapsed_ms, error, value, time)."""
        return list(self._call("GET", "deliveries")["value"])

    def counters(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("GET", "counters").items()}

    def reset_counters(self) -> None:
        self._call("POST", "counters/reset", {})

    def flush_notifications(self, timeout: float = 5.0) -> bool:
        """Wait (in the simulator) until every pending notification was delivered or gave up."""
        return bool(self._call("POST", "flush", {"timeout": timeout}, timeout=timeout + self._call_timeout)["flushed"])

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the simulator's injected faults (`Faults.set`: latency_ms, rate_429, ...); returns them."""
        return dict(self._call("POST", "faults", settings))

    # -- transport -------------------------------------------------------------------
    def _call(self, method: str, route: str, body: dict[str, Any] | None = None,
              timeout: float | None = None) -> dict[str, Any]:
        """One control request; the connection is reopened once when the kept-alive one was closed."""
        payload = json.dumps({k: v for k, v in (body or {}).items() if v is not None}).encode() if body is not None \
            else b""
        path = f"/_sim/{route}"
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                conn.timeout = timeout or self._call_timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                try:
                    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
                    response = conn.getresponse()
                    data = response.read()
                except (ConnectionError, ssl.SSLEOFError, http.client.RemoteDisconnected,
                        http.client.CannotSendRequest) as exc:  # TLS closes an idle connection with an EOF
                    conn.close()
                    self._conn = None
                    if attempt == 2 or self._proc is None or self._proc.poll() is not None:
                        raise SimulatorProcessError(f"graphsim {method} {path}: {exc!r}") from exc
                    continue
                break
        try:
            found = json.loads(data) if data else {}
        except ValueError:
            found = {"raw": data[:200].decode(errors="replace")}
        if response.status != 200:
            raise SimulatorProcessError(f"graphsim {method} {path}: {response.status} {found}")
        if not isinstance(found, dict):
            raise SimulatorProcessError(f"graphsim {method} {path}: expected a JSON object, got {found!r}")
        return found

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            parts = urllib.parse.urlsplit(self.base_url)
            context = ssl.create_default_context(cafile=self.ca_file)
            self._conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port,
                                                     timeout=self._call_timeout, context=context)
        return self._conn


def _seg(value: str) -> str:
    """A path segment as the control API matches it (it does not percent-decode)."""
    if not value or any(ch in value for ch in "/?# %"):
        raise ValueError(f"{value!r} cannot be a control API path segment")
    return value


def _drain(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    """Hand the first line over and keep reading the rest, so the child never blocks on a full pipe."""
    if stream is None:
        lines.put("")
        return
    lines.put(stream.readline())
    for _ in stream:
        pass

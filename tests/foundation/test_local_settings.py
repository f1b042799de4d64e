"""Which settings a local process gets: local.settings.json, the demo's, or the environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import local_settings

ROOT = Path(__file__).resolve().parents[2]


def _write(path, values, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values, **extra}))


@pytest.fixture
def listening() -> Iterator[str]:
    """A URL something listens at (what a running demo's host is)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def closed_url() -> str:
    """A URL nothing listens at (the port of a host that has exited)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_without_client_id_the_demo_settings_apply(tmp_path, listening):
    _write(tmp_path / "local.settings.json", {"LOG_LEVEL": "DEBUG", "CLIENT_ID": ""})
    _write(tmp_path / ".data" / "demo" / "local.settings.json",
           {"CLIENT_ID": "demo-client", "SQLITE_PATH": "/demo/calendar.db", "REQUESTS_CA_BUNDLE": "/demo/ca.pem"},
           Instance={"pid": os.getpid(), "base_url": listening})
    env = {"SQLITE_PATH": "/mine.db", "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
    instance = local_settings.load(env, root=tmp_path)
    assert instance.kind == "demo" and instance.running and instance.pid == os.getpid()
    assert env["CLIENT_ID"] == "demo-client"
    assert env["SQLITE_PATH"] == "/mine.db"  # the environment wins for the app's settings
    assert env["REQUESTS_CA_BUNDLE"] == "/demo/ca.pem"  # but the simulator's CA is the demo's
    assert "LOG_LEVEL" not in env  # the demo's file is its whole configuration


def test_a_client_id_means_local_settings_json(tmp_path):
    _write(tmp_path / "local.settings.json", {"CLIENT_ID": "real-client", "LOG_LEVEL": "DEBUG", "//": "note"})
    _write(tmp_path / ".data" / "demo" / "local.settings.json", {"CLIENT_ID": "demo-client"})
    env: dict[str, str] = {"LOG_LEVEL": "WARNING"}
    instance = local_settings.load(env, root=tmp_path)
    assert instance.kind == "local"
    assert env == {"CLIENT_ID": "real-client", "LOG_LEVEL": "WARNING"}


def test_nothing_on_disk_is_the_environment(tmp_path):
    env = {"CLIENT_ID": "x"}
    assert local_settings.load(env, root=tmp_path).kind == "environment"
    assert env == {"CLIENT_ID": "x"}


def test_a_stopped_demo_is_not_running(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _write(tmp_path / ".data" / "demo" / "local.settings.json", {"CLIENT_ID": "demo-client"},
           Instance={"pid": int(gone.stdout)})
    assert not local_settings.load({}, root=tmp_path).running


# The demo as a child that records itself the way devhost/demo.py does, then waits to be killed.
_DEMO = """
import socket, sys, time
from pathlib import Path
from shared.local_settings import write_demo_settings
server = socket.create_server(("127.0.0.1", 0))
write_demo_settings({}, {"base_url": f"http://127.0.0.1:{server.getsockname()[1]}"}, path=Path(sys.argv[1]))
print("recorded", flush=True)
time.sleep(600)
"""


def test_a_killed_demo_not_yet_reaped_is_not_running(tmp_path):
    """`make` killed with the demo leaves it a zombie until init reaps it; `kill(pid, 0)` still finds it."""
    record = tmp_path / ".data" / "demo" / "local.settings.json"
    demo = subprocess.Popen([sys.executable, "-c", _DEMO, str(record)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None and demo.stdout.readline() == "recorded\n"
        assert local_settings.load({}, root=tmp_path).running
        demo.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _state(demo.pid) != "Z" and time.monotonic() < deadline:  # dead, and not reaped: nobody waits
            time.sleep(0.01)
        os.kill(demo.pid, 0)  # the pid still answers
        assert not local_settings.load({}, root=tmp_path).running
    finally:
        demo.kill()
        demo.wait()


def _state(pid: int) -> str:
    """The process state letter (Z: exited, not reaped); "?" where /proc cannot say."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def test_a_record_whose_pid_is_another_process_is_not_running(tmp_path):
    """A record left by a demo that died uncleanly: its pid is some other live process by now."""
    _write(tmp_path / ".data" / "demo" / "local.settings.json", {"CLIENT_ID": "demo-client"},
           Instance={"pid": os.getpid(), "base_url": closed_url()})
    assert not local_settings.load({}, root=tmp_path).running


def test_unreadable_settings_name_the_file(tmp_path):
    (tmp_path / "local.settings.json").write_text("{not json")
    with pytest.raises(local_settings.LocalSettingsError, match=r"^local.settings.json is not valid JSON"):
        local_settings.load({}, root=tmp_path)

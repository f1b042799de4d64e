"""Which settings a local process gets: local.settings.json, the demo's, or the environment."""

from __future__ import annotations

import json
import os

import pytest

from shared import local_settings


def _write(path, values, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values, **extra}))


def test_without_client_id_the_demo_settings_apply(tmp_path):
    _write(tmp_path / "local.settings.json", {"LOG_LEVEL": "DEBUG", "CLIENT_ID": ""})
    _write(tmp_path / ".data" / "demo" / "local.settings.json",
           {"CLIENT_ID": "demo-client", "SQLITE_PATH": "/demo/calendar.db", "REQUESTS_CA_BUNDLE": "/demo/ca.pem"},
           Instance={"pid": os.getpid(), "base_url": "http://127.0.0.1:7071"})
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
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _write(tmp_path / ".data" / "demo" / "local.settings.json", {"CLIENT_ID": "demo-client"},
           Instance={"pid": int(gone.stdout)})
    assert not local_settings.load({}, root=tmp_path).running


def test_unreadable_settings_name_the_file(tmp_path):
    (tmp_path / "local.settings.json").write_text("{not json")
    with pytest.raises(local_settings.LocalSettingsError, match=r"^local.settings.json is not valid JSON"):
        local_settings.load({}, root=tmp_path)

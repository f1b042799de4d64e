"""One local instance: what `make run` runs is what `python -m shared` in a second terminal sees.

Acceptance 1: the demo host runs (`make run PORT=...` in a fresh copy of the
project, so no state of this checkout is touched); `status`, `doctor` and an
action run through the CLI in separate processes with no settings of their own.
Acceptance 3: `make run PORT=...`, and a busy port is one line, no traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.config import SETTINGS
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("shared", "devhost", "graphsim", "function_app.py", "host.json", "Makefile",
           "requirements.txt", "requirements-dev.txt")


def clean_env() -> dict[str, str]:
    """This shell's environment without any setting of the app (a new terminal on a fresh clone)."""
    ours = {s.env for s in SETTINGS}
    return {k: v for k, v in os.environ.items()
            if k not in ours and not k.startswith(("AzureWebJobs", "DEVHOST_")) and k != "PYTEST_CURRENT_TEST"}


@pytest.fixture
def fresh_clone(tmp_path) -> Path:
    """The project's code in a new folder (no .data, no local.settings.json), sharing the virtualenv."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, clone / name)
    (clone / ".venv").symlink_to((ROOT / ".venv").resolve())
    return clone


def cli(clone: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared", *args], cwd=clone, env=clean_env(),
                          capture_output=True, text=True, timeout=timeout)


class Demo:
    """`make run PORT=...` in its own process group, its output collected as it comes."""

    def __init__(self, clone: Path, port: int) -> None:
        # -o: the shared virtualenv is installed already; never reinstall it from a test.
        self.proc = subprocess.Popen(["make", "-s", "-o", ".venv/bin/.installed", "run", f"PORT={port}"],
                                     cwd=clone, env=clean_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the demo never printed {text!r}:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


@pytest.mark.slow
def test_cli_in_a_second_terminal_sees_the_running_demo(fresh_clone):
    port = free_port()
    demo = Demo(fresh_clone, port)
    try:
        demo.wait_for("Now changing events")
        output = "\n".join(demo.lines)
        # What the demo prints: its routes, where the function key is, where its rows are.
        assert f"http://127.0.0.1:{port}/api/health" in output
        assert f"GET          http://127.0.0.1:{port}/api/status  [function]" in output
        assert str(fresh_clone / ".data" / "devhost-keys.json") in output
        assert str(fresh_clone / ".data" / "demo" / "calendar.db") in output
        # Log lines name users as the demo's own lines do (by address), never by a bare id.
        assert re.search(r"INFO shared\.sync: sync adele@contoso\.onmicrosoft\.com \(linked, all calendars\) done",
                         output), output
        assert not re.search(r"INFO shared\.\w+: (sync |user )?[0-9a-f]{8}-[0-9a-f]{4}-", output), output

        status = cli(fresh_clone, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        for address in ("adele@contoso.onmicrosoft.com", "alex@contoso.onmicrosoft.com"):
            live = r"(\d)/\1 calendars live, first expiry \d\d-\d\d \d\d:\d\dZ"
            assert re.search(rf"^{re.escape(address)} +linked +{live}", status.stdout, re.M), status.stdout
        document = json.loads(cli(fresh_clone, "status", "--json").stdout)
        assert {u["name"] for u in document["users"]} == {"Adele Vance", "Alex Wilber"}

        doctor = cli(fresh_clone, "doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "OK   instance: the `make run` demo" in doctor.stdout
        assert "OK   user adele@contoso.onmicrosoft.com: token ok" in doctor.stdout
        assert re.search(r"^all \d+ checks ok$", doctor.stdout, re.M)

        action = cli(fresh_clone, "action", "list-calendars", "--user", "adele@contoso.onmicrosoft.com")
        assert action.returncode == 0, action.stdout + action.stderr
        assert {c["name"] for c in json.loads(action.stdout)["value"]} == {"Calendar", "Team", "Travel"}
    finally:
        demo.stop()
    # Stopped: the CLI still finds the demo's rows, and doctor says the demo is not running.
    doctor = cli(fresh_clone, "doctor")
    assert doctor.returncode == 1
    assert "FAIL instance: the `make run` demo" in doctor.stdout and "make run" in doctor.stdout


@pytest.fixture
def busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("client_id", [None, "11111111-2222-3333-4444-555555555555"], ids=["demo", "real"])
def test_busy_port_is_one_line_without_traceback(busy_port, client_id, tmp_path):
    env = clean_env()
    if client_id:
        env.update(CLIENT_ID=client_id, SQLITE_PATH=str(tmp_path / "c.db"), LOCAL_QUEUE_PATH=str(tmp_path / "q.db"),
                   LOCAL_SECRETS_DIR=str(tmp_path / "s"))
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "devhost", "--port", str(busy_port)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert f"make run PORT={busy_port + 1}" in result.stderr
    assert time.monotonic() - started < 30  # it fails before starting the simulator or the host


def test_make_run_passes_the_port(busy_port):
    result = subprocess.run(["make", "-s", "-o", ".venv/bin/.installed", "run", f"PORT={busy_port}"], cwd=ROOT,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    return {t for t in phony if t != "help"}


def test_make_help_lists_every_target():
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    listed = set(re.findall(r"^make ([\w-]+)", result.stdout, re.M))
    assert _make_targets() - {"venv", "node"} <= listed, result.stdout


def test_make_clean_removes_what_make_installed():
    """`make -n clean` (nothing is removed here: .venv-infra may be shared)."""
    result = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    removed = set(result.stdout.split())
    assert {".venv", ".venv-infra", "node_modules", ".data"} <= removed, result.stdout


# --- acceptance 4: every command survives a reader that stops early -----------------------------

COMMANDS = [["doctor"], ["status"], ["status", "--json"], ["actions"], ["actions", "--json"],
            ["settings", "sample"], ["fixture", "--all"], ["rows", "events"], ["--help"], ["action", "--help"]]


def test_doctor_piped_into_head_exits_cleanly(fresh_clone):
    result = subprocess.run(["bash", "-c", "python -m shared doctor | head -1"], cwd=fresh_clone,
                            env={**clean_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(("OK ", "FAIL "))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_closed_pipe_ends_every_command_quietly(fresh_clone, command):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write fails
    try:
        result = subprocess.run([sys.executable, "-m", "shared", *command], cwd=fresh_clone, env=clean_env(),
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == "", result.stderr
    # 141 as a shell reports a writer ended by SIGPIPE; argparse's --help swallows the error itself (0).
    assert result.returncode == (0 if "--help" in command else 141)


def test_a_queue_service_that_does_not_answer_is_named(tmp_path):
    """Sample settings copied with a CLIENT_ID but Azurite not started: one line naming the setting."""
    port = free_port()
    storage = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
               f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    env = {**clean_env(), "CLIENT_ID": "11111111-2222-3333-4444-555555555555", "AzureWebJobsStorage": storage,
           "SQLITE_PATH": str(tmp_path / "c.db"), "LOCAL_SECRETS_DIR": str(tmp_path / "s")}
    result = subprocess.run([sys.executable, "-m", "devhost", "--port", "0"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"http://127.0.0.1:{port}/devstoreaccount1 (AzureWebJobsStorage) does not answer" in result.stderr

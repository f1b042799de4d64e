"""Azurite (Tables, Queues, Blobs) as a child process on free loopback ports, in memory.

Installed from the pinned package.json (`npm ci`); the tests' fixture and the
benchmarks start it the same way through `start()`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int
    workdir: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        """Azurite can take a few seconds to exit: wait, then kill."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def installed() -> bool:
    return BINARY.exists() and shutil.which("node") is not None


def start(timeout: float = 30.0, ports: tuple[int, int, int] | None = None) -> Azurite | None:
    """A running Azurite (on `ports`: blob, queue, table, when given), or None when it is not
    installed or does not come up in time."""
    if not installed():
        return None
    ports = ports or (free_port(), free_port(), free_port())
    workdir = tempfile.mkdtemp(prefix="azurite-")
    process = subprocess.Popen(
        [str(BINARY), "--silent", "--inMemoryPersistence", "--loose", "--skipApiVersionCheck",
         "--disableTelemetry",
         "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
         "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
         "--tableHost", "127.0.0.1", "--tablePort", str(ports[2])],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    azurite = Azurite(process, *ports, workdir)
    deadline = time.monotonic() + timeout
    while not all(port_answers(p) for p in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            azurite.stop()
            return None
        time.sleep(0.1)
    return azurite

"""Azurite alone under the steady load's queue pattern: does the emulator itself pause?

One change = one small message sent, received and deleted on a work queue (the sync request) and
one message left on a second queue (the feed message nobody reads here), CHANGES per second for
SECONDS. Printed: queue calls of a change that took over 0.5 s (seconds after Azurite started, how
long), and Azurite's own log lines of its queue GC (run with --debug). bench/bench_steady.py's
Azurite tail is this pause: every 60 s Azurite deletes the extents of the deleted messages and its
event loop answers nothing meanwhile (3.2 s for ~1,200 extents on the 2-core machine).

Run: .venv/bin/python bench/bench_azurite_pause.py [--seconds 75] [--rate 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import azurite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=75.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    if not azurite.installed():
        raise SystemExit("Azurite is not installed: run `npm ci` (make test does)")
    from shared.queues.azure import AzureStorageQueue

    workdir = tempfile.mkdtemp(prefix="azurite-pause-")
    log, port = f"{workdir}/debug.log", azurite.free_port()
    process = subprocess.Popen(
        [str(azurite.BINARY), "--silent", "--inMemoryPersistence", "--loose", "--skipApiVersionCheck",
         "--disableTelemetry", "--debug", log, "--queueHost", "127.0.0.1", "--queuePort", str(port),
         "--blobPort", str(azurite.free_port()), "--tablePort", str(azurite.free_port())],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    connection = (f"DefaultEndpointsProtocol=http;AccountName={azurite.ACCOUNT};AccountKey={azurite.KEY};"
                  f"QueueEndpoint=http://127.0.0.1:{port}/{azurite.ACCOUNT};")
    try:
        while not azurite.port_answers(port):
            if time.perf_counter() - started > 30:
                raise SystemExit("Azurite did not start")
            time.sleep(0.1)
        work, kept = AzureStorageQueue("work", connection, None), AzureStorageQueue("kept", connection, None)
        changes, slow, begin = 0, [], time.perf_counter()
        while time.perf_counter() - begin < args.seconds:
            if changes >= (time.perf_counter() - begin) * args.rate:
                time.sleep(0.005)
                continue
            at = time.perf_counter()
            work.send('{"user_id":"u","reason":"notification"}')
            kept.send("row changes " * 20)
            for message in work.receive(8, visibility_timeout=30):
                work.delete(message)
            took = time.perf_counter() - at
            if took > 0.5:
                slow.append(f"{at - started:.0f} s: {took:.1f} s")
            changes += 1
        print(f"{changes} changes in {args.seconds:.0f} s; a change's queue calls over 0.5 s "
              f"(seconds after Azurite started: how long): {', '.join(slow) or 'none'}")
    finally:
        process.terminate()
        process.wait(timeout=10)
    wall_start = time.time() - (time.perf_counter() - started)
    for line in Path(log).read_text(errors="replace").splitlines():
        if "QueueGCManager" in line and ("Start to delete" in line or "finished" in line):
            stamp = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line)
            when = (time.mktime(time.strptime(stamp.group(0)[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                    - wall_start) if stamp else float("nan")
            print(f"Azurite, {max(when, 0.0):.0f} s after it started: {line.split('QueueGCManager:', 1)[1].strip()}")
    shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    print(f"load: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min)")


if __name__ == "__main__":
    main()

"""CPU per Azure queue call (Azurite): the app's client next to the SDK's default set-up, interleaved.

The app's client (shared/queues/azure.py) reads the proxy and CA-bundle environment once; the SDK's
default lets requests read it on every request, walking os.environ twice. The cost grows with the
environment, so --extra-env N adds N app settings first (a Functions host has a hundred or more).
Both clients get the same timeouts and retry policy; CPU is this thread's (time.thread_time), the
median of the rounds, so other processes on the machine count for less than in wall time.

Run: .venv/bin/python bench/bench_queue_calls.py [--rounds 7] [--calls 200] [--extra-env 150]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = '{"user_id":"0b4c7c0e-1111-2222-3333-444455556666","reason":"notification","calendar_id":"AAMkAD"}'


def sdk_default_queue(name: str, connection_string: str) -> Any:
    """The app's queue class on a client the SDK way: environment read by requests per request."""
    from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared.queues import azure

    queue = azure.AzureStorageQueue(name, connection_string, None)
    queue._client = QueueClient.from_connection_string(
        connection_string, name, message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(), connection_timeout=azure.CONNECT_TIMEOUT_SECONDS,
        read_timeout=azure.READ_TIMEOUT_SECONDS,
        retry_policy=LinearRetry(backoff=azure.RETRY_BACKOFF_SECONDS, retry_total=azure.RETRIES,
                                 random_jitter_range=0))
    return queue


def one_round(queue: Any, calls: int) -> dict[str, float]:
    started = time.thread_time()
    for _ in range(calls):
        queue.send(BODY)
    sent = time.thread_time()
    received: list[Any] = []
    receives = 0
    while len(received) < calls:
        received += queue.receive(16, visibility_timeout=30)
        receives += 1
    got = time.thread_time()
    for message in received:
        queue.delete(message)
    done = time.thread_time()
    return {"send": (sent - started) / calls, "receive": (got - sent) / receives, "delete": (done - got) / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--extra-env", type=int, default=0, help="app settings added to the environment first")
    args = parser.parse_args()
    for n in range(args.extra_env):
        os.environ[f"APPSETTING_BENCH_{n}"] = f"value-{n}-{uuid.uuid4().hex}"
    from devtools import azurite as azurite_process
    from shared.queues.azure import AzureStorageQueue

    azurite = azurite_process.start()
    if azurite is None:
        raise SystemExit("Azurite could not be started: run `npm ci` (make test does)")
    try:
        queues = {"SDK default (environment per request)": sdk_default_queue("bench-sdk", azurite.connection_string),
                  "app client (environment once)": AzureStorageQueue("bench-app", azurite.connection_string, None)}
        figures: dict[str, list[dict[str, float]]] = {label: [] for label in queues}
        for _ in range(args.rounds):
            for label, queue in queues.items():
                figures[label].append(one_round(queue, args.calls))
        print(f"{len(os.environ)} environment variables, {args.rounds} rounds of {args.calls} messages")
        for label, rounds in figures.items():
            medians = {op: statistics.median(r[op] for r in rounds) * 1000 for op in ("send", "receive", "delete")}
            print(f"{label:<40} CPU per call: send {medians['send']:.2f} ms, receive (up to 16) "
                  f"{medians['receive']:.2f} ms, delete {medians['delete']:.2f} ms")
    finally:
        azurite.stop()
    load = os.getloadavg()
    print(f"load: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min)")


if __name__ == "__main__":
    main()

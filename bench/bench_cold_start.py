"""Cold start: how long a fresh interpreter takes to import `function_app`.

Graph gives the notification endpoint 3 s and the validation handshake 10 s,
cold start included, so the import must stay light. Printed side by side with
a bare interpreter start and with importing the heavy SDKs the app loads
lazily, all measured in this run. No test asserts these timings.

Run: .venv/bin/python bench/bench_cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "bare interpreter": "pass",
    "import function_app": "import function_app; function_app.app.get_functions()",
    "import heavy SDKs (lazy in the app)": (
        "import msal, requests, cryptography.hazmat.primitives.ciphers.aead, psycopg, "
        "azure.data.tables, azure.storage.queue, azure.keyvault.secrets, azure.identity"
    ),
}


def measure(code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = {name: measure(code, args.runs) for name, code in CASES.items()}
    bare = statistics.median(results["bare interpreter"])
    print(f"{'case':<40} {'median ms':>10} {'p90 ms':>8} {'minus bare':>11}")
    for name, times in results.items():
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        median = statistics.median(times)
        print(f"{name:<40} {median:>10.1f} {p90:>8.1f} {median - bare:>11.1f}")
    app = statistics.median(results["import function_app"])
    print(f"function_app import budget 300 ms: {'within' if app < 300 else 'OVER'} ({app:.0f} ms, whole process)")


if __name__ == "__main__":
    main()

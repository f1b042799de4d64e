"""`python -m devhost`: serve function_app.py on 127.0.0.1:7071 (what `make run` starts)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import socket
import sys
import threading
from typing import Any


class PortBusy(Exception):
    """The host's port is taken; the message names it and the fix."""


def port_busy_message(host: str, port: int) -> str:
    return (f"error: port {port} on {host} is already in use (another `make run` or `func start`?); "
            f"stop that process or choose another port: make run PORT={port + 1}")


def ensure_port_free(host: str, port: int) -> None:
    """Fail before starting anything (simulator, threads) when the port is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusy(port_busy_message(host, port)) from None
            raise


def start_host(host: Any, bind: str, port: int) -> None:
    """`host.start()`, with a taken port (lost race after the probe) as PortBusy."""
    try:
        host.start()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortBusy(port_busy_message(bind, port)) from None
        raise


def unreachable_queue(timeout: float = 3.0) -> str | None:
    """One line when the app's queue service does not answer (Azurite not started, a wrong host);
    a TCP connect, so the SDK's retries do not keep a new user waiting for a minute."""
    from urllib.parse import urlsplit

    from shared.config import get_settings
    from shared.queues.wiring import EMBEDDED, app_endpoint

    endpoint = app_endpoint(get_settings())
    if endpoint.kind == EMBEDDED:
        return None
    parts = urlsplit(endpoint.address)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError as exc:
        return (f"the {endpoint.describe()} does not answer ({exc.strerror or type(exc).__name__}): "
                f"start Azurite (npx azurite) for UseDevelopmentStorage=true, or remove {endpoint.source} "
                "from local.settings.json to use the embedded queue")
    return None


def describe_host(host: Any) -> list[str]:
    """The routes, timers, queue triggers and where the function key is: what a user needs to call it."""
    from shared.local_settings import DEVHOST_KEYS

    lines = [f"Local Functions host on {host.base_url}/{host.prefix}  (Ctrl-C stops)"]
    for route in host.routes:
        methods = ",".join(sorted(route.methods)) or "ANY"
        lines.append(f"  {methods:<12} {host.base_url}/{host.prefix}/{route.template}  [{route.auth_level.lower()}]")
    for job in host.timers:
        lines.append(f"  timer        {job.name}  [{job.schedule}]")
    for job in host.queue_jobs:
        lines.append(f"  queue        {job.name}  <- {job.queue_name} on {job.endpoint.describe()}")
    lines.append(f"Function key (x-functions-key header or ?code=, for [function] routes): in {DEVHOST_KEYS}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers")
    parser.add_argument("--no-queues", action="store_true", help="do not run queue triggers")
    parser.add_argument("--demo", action="store_true", help="run the Graph-simulator demo even with a CLIENT_ID")
    parser.add_argument("--poll-interval", type=float, default=0.2,
                        help="seconds between polls of a queue that just had messages (an idle queue backs off "
                             "to host.json's maxPollingInterval)")
    args = parser.parse_args(argv)
    try:
        return _serve(args)
    except PortBusy as exc:
        print(exc, file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import os

    from devhost.settings import load_local_settings

    ensure_port_free(args.host, args.port)
    load_local_settings()
    if args.demo or not os.environ.get("CLIENT_ID"):
        return _demo(args)
    from shared.config import ConfigError, get_settings
    from shared.logging_setup import configure_logging

    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from devhost.host import DevHost, QueueWiringError

    try:
        host = DevHost(host=args.host, port=args.port, timers=not args.no_timers, queues=not args.no_queues,
                       poll_interval=args.poll_interval)
    except QueueWiringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = unreachable_queue()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    start_host(host, args.host, args.port)
    print("\n".join(describe_host(host)), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    host.stop()
    logging.getLogger("devhost").info("stopped")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """No credentials configured: the whole loop against the Graph simulator (devhost/demo.py)."""
    from devhost import demo
    from devhost.host import DevHost
    from shared.logging_setup import configure_logging

    configure_logging("INFO")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    factory = lambda: DevHost(host=args.host, port=args.port, timers=not args.no_timers,  # noqa: E731
                              queues=not args.no_queues, poll_interval=args.poll_interval)
    try:
        return demo.run(factory, args.port, stop, start=lambda host: start_host(host, args.host, args.port))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m devhost`: serve function_app.py on 127.0.0.1:7071 (what `make run` starts)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers")
    parser.add_argument("--no-queues", action="store_true", help="do not run queue triggers")
    parser.add_argument("--demo", action="store_true", help="run the Graph-simulator demo even with a CLIENT_ID")
    args = parser.parse_args(argv)

    import os

    from devhost.settings import load_local_settings

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

    from devhost.host import DevHost

    host = DevHost(host=args.host, port=args.port, timers=not args.no_timers, queues=not args.no_queues)
    try:
        host.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"Local Functions host on {host.base_url}/{host.prefix}  (Ctrl-C stops)")
    for route in host.routes:
        methods = ",".join(sorted(route.methods)) or "ANY"
        print(f"  {methods:<12} {host.base_url}/{host.prefix}/{route.template}  [{route.auth_level.lower()}]")
    for job in host.timers:
        print(f"  timer        {job.name}  [{job.schedule}]")
    for job in host.queue_jobs:
        print(f"  queue        {job.name}  <- {job.queue_name}")
    print("Function key (x-functions-key header or ?code=): kept in .data/devhost-keys.json")
    sys.stdout.flush()

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
                              queues=not args.no_queues)
    try:
        return demo.run(factory, args.port, stop)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

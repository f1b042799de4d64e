"""`python -m graphsim [--port N] [--demo]`: run the simulator standalone until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from .demo import seed
from .simulator import GraphSimulator
from .subscriptions import DEFAULT_LIFETIME_LIMIT_MINUTES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="graphsim", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--demo", action="store_true", help="seed a demo tenant with users, calendars and an app")
    p.add_argument("--lifetime-limit-minutes", type=int, default=DEFAULT_LIFETIME_LIMIT_MINUTES,
                   help="Outlook subscription lifetime limit of the simulated tenant (Graph: 10080)")
    p.add_argument("--delta-other-calendars", action="store_true")
    p.add_argument("--https-notifications-only", action="store_true")
    args = p.parse_args(argv)
    sim = GraphSimulator(port=args.port, lifetime_limit_minutes=args.lifetime_limit_minutes,
                         delta_other_calendars=args.delta_other_calendars,
                         allow_http_notification_urls=not args.https_notifications_only).start()
    info: dict = {"graphsim": True, "base_url": sim.base_url, "graph_url": sim.graph_url,
                  "ca_file": sim.ca_file, "control_url": sim.base_url + "/_sim"}
    if args.demo:
        demo = seed(sim)
        info.update(demo, authority=sim.authority(demo["tenant_id"]))
    print(json.dumps(info), flush=True)
    print(f"graphsim listening on {sim.base_url}\n  Graph:     {sim.graph_url}\n  CA file:   {sim.ca_file}"
          f"  (export REQUESTS_CA_BUNDLE={sim.ca_file})", flush=True)
    if args.demo:
        print(f"  Authority: {info['authority']}\n  Client id: {info['client_id']}\n"
              f"  Secret:    {info['client_secret']}\n  Redirect:  {info['redirect_uri']}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

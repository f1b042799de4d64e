"""The process's one `requests.Session` for Graph: pooled keep-alive connections.

Retries are not done by the adapter (the client's loop does them, see
retry.py), so `max_retries=0` here. TLS trust follows requests' defaults,
including REQUESTS_CA_BUNDLE (how tests trust the simulator's CA).
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from shared import __version__, runtime

POOL_CONNECTIONS = 10  # distinct hosts kept (Graph, national clouds, the simulator)
POOL_MAXSIZE = 32  # connections per host: workers x 4 per mailbox, bounded


def _build() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_MAXSIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"outlook-calendar-sync/{__version__}"
    return session


def graph_session() -> requests.Session:
    """The shared session (closed and rebuilt by `runtime.reset()`)."""
    return runtime.cached("graph.session", _build)

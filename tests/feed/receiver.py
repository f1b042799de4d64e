"""A local HTTPS webhook receiver for the tests and the benchmark: verifies every signature it gets."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.feed import signing


class WebhookReceiver:
    """Answers with `answer(n)` (status, headers) for its n-th request (0-based); records what it got."""

    def __init__(self, secret: str, context: ssl.SSLContext | None,
                 answer: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {})) -> None:
        self.secret, self.answer = secret, answer
        self.requests: list[dict[str, Any]] = []   # every request: time, status answered, signature ok
        self.accepted: list[dict[str, Any]] = []   # bodies answered with 2xx
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = signing.verify(owner.secret, self.headers.get(signing.TIMESTAMP_HEADER, ""), body,
                                    self.headers.get(signing.SIGNATURE_HEADER, ""), now=time.time())
                with owner.lock:
                    status, headers = owner.answer(len(owner.requests))
                    owner.requests.append({"at": time.time(), "status": status, "signature_ok": ok,
                                           "id": self.headers.get(signing.ID_HEADER)})
                    if 200 <= status < 300:
                        owner.accepted.append(json.loads(body))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if context is not None else "http"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}/hook"

    def unique(self) -> dict[str, dict[str, Any]]:
        """What a consumer de-duplicating on `id` keeps."""
        with self.lock:
            return {m["id"]: m for m in self.accepted}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

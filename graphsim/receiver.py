"""A tiny webhook receiver for tests and benchmarks: echoes validation tokens, records notifications."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Local HTTP(S) endpoint; `mode` can make the handshake fail ('wrong-echo', 'slow', 'error')."""

    def __init__(self, mode: str = "ok", delay_s: float = 0.0, status: int = 202,
                 tls: ssl.SSLContext | None = None) -> None:
        self.mode, self.delay_s, self.status = mode, delay_s, status
        self.scheme = "https" if tls is not None else "http"
        self.notifications: list[dict[str, Any]] = []
        self.validations: list[str] = []
        self.posts = 0
        self.cond = threading.Condition()
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if "validationToken" in q:
                    token = q["validationToken"][0]
                    recv.validations.append(token)
                    if recv.mode == "slow":
                        time.sleep(recv.delay_s)
                    out = (token + "x" if recv.mode == "wrong-echo" else token).encode()
                    code = 500 if recv.mode == "error" else 200
                    self.send_response(code)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                items = json.loads(body or b"{}").get("value", [])
                with recv.cond:
                    recv.posts += 1
                    recv.notifications.extend(items)
                    recv.cond.notify_all()
                self.send_response(recv.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        if tls is not None:     # e.g. GraphSimulator.certs.server_context(): an https endpoint Graph accepts
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}/api/notify"

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.notifications) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.notifications)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

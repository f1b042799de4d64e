"""HTTPS transport: a threaded http.server that adapts sockets to `GraphSimulator.dispatch`."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .wire import Request

if TYPE_CHECKING:
    from .simulator import GraphSimulator

log = logging.getLogger("graphsim")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], sim: GraphSimulator, ctx: ssl.SSLContext) -> None:
        super().__init__(addr, _Handler)
        self.sim = sim
        self.ctx = ctx

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        # Handshake lazily in the handler thread so one slow client cannot stall accept().
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graphsim"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.settimeout(30)
            # Headers and body leave in one write and without Nagle: no 40 ms delayed-ACK stalls.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connection.do_handshake()
        except (OSError, ssl.SSLError):
            self.close_connection = True
            raise

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request.build(self.command, self.path, dict(self.headers.items()), body)
        resp = self.server.sim.dispatch(req)
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]  # http.server internal, set by send_header
        if self.command != "HEAD" and resp.body:
            self._headers_buffer.append(resp.body)  # type: ignore[attr-defined]  # body sent with the headers
        self.flush_headers()

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def serve(sim: GraphSimulator, host: str, port: int, ctx: ssl.SSLContext) -> tuple[_Server, threading.Thread]:
    httpd = _Server((host, port), sim, ctx)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="graphsim-http",
                         daemon=True)
    t.start()
    return httpd, t


def shutdown(httpd: _Server) -> None:
    httpd.shutdown()
    with contextlib.suppress(OSError):
        httpd.server_close()

"""Issue 12 item 1: the bearer token goes to the configured Graph origin only, as requests resolves URLs.

Two real local HTTP servers play Graph and an attacker; the attacker must never see a request
carrying the token or a body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.graph import ForeignHostError, GraphClient


class Recorder(ThreadingHTTPServer):
    """Answers 200 {} to everything (or `redirect_to` with `redirect_status`) and records what arrived."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.redirect_to: str | None = None
        self.redirect_status = 307
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": self.rfile.read(length) if length else b""})
        if self.server.redirect_to:
            self.send_response(self.server.redirect_status)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    graph, attacker = Recorder(), Recorder()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (graph, attacker)]
    for thread in threads:
        thread.start()
    yield graph, attacker
    for server in (graph, attacker):
        server.shutdown()
        server.server_close()


def client_for(graph: Recorder) -> GraphClient:
    return GraphClient(graph.origin + "/v1.0", lambda: "secret-token", session=requests.Session(), max_retries=0)


def hostile_urls(graph: Recorder, attacker: Recorder) -> list[str]:
    g, a = graph.origin, attacker.origin
    g_host = g.removeprefix("http://")
    a_host = a.removeprefix("http://")
    return [
        f"http://{a_host}\\@{g_host}/v1.0/me",          # urlsplit: host g; urllib3: host a
        f"http://{a_host}\\\\@{g_host}/v1.0/me",
        f"http://{a_host}%5C@{g_host}/v1.0/me",
        f"http://user:pw@{g_host}/v1.0/me",              # userinfo
        f"http://{a_host}@{g_host}/v1.0/me",
        f"http://{g_host}\\@{a_host}/v1.0/me",
        f"http://{g_host}/v1.0/me\\..\\..\\x",
        f"http://{g_host}/v1.0/../me",                   # dot segments
        f"http://{g_host}/v1.0/%2e%2e/me",
        f"http://{g_host}/other/me",                     # same origin, not below the base
        f"http://{g_host}\t/v1.0/me",
        f"http://{g_host}/v1.0/me#@{a_host}",
        f"//{a_host}/v1.0/me",
        "me\\..\\..\\x",
        "../me",
        "/me/events/%2E%2E",
        "me/\x00",
    ]


def test_hostile_urls_never_reach_another_host_nor_carry_the_token(servers):
    graph, attacker = servers
    client = client_for(graph)
    for url in hostile_urls(graph, attacker):
        with pytest.raises(ForeignHostError) as info:
            client.request("GET", url)
        assert info.value.status == 400 and info.value.code == "ForeignHostRefused", url
    assert attacker.seen == [] and graph.seen == []


def test_plain_paths_and_same_origin_links_still_work(servers):
    graph, _ = servers
    client = client_for(graph)
    client.get("/me/events", params={"$filter": "subject eq 'a b'"})
    client.get(graph.origin + "/v1.0/me/events?$skiptoken=abc%2Fdef")
    client.get("me/calendars/AAMk%2Fx%3D%3D/events")
    assert [s["path"] for s in graph.seen] == [
        "/v1.0/me/events?%24filter=subject+eq+%27a+b%27",
        "/v1.0/me/events?$skiptoken=abc%2Fdef",
        "/v1.0/me/calendars/AAMk%2Fx%3D%3D/events",
    ]
    assert all(s["headers"]["Authorization"] == "Bearer secret-token" for s in graph.seen)


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_elsewhere_never_resends_the_body(servers, status):
    graph, attacker = servers
    graph.redirect_to, graph.redirect_status = attacker.origin + "/steal", status
    response = client_for(graph).request("POST", "/me/events", json={"subject": "private"})
    assert response.status_code == status  # the redirect is the answer; the body stays here
    assert attacker.seen == []
    assert json.loads(graph.seen[0]["body"]) == {"subject": "private"}


def test_a_bodyless_redirect_elsewhere_drops_the_token(servers):
    graph, attacker = servers
    graph.redirect_to = attacker.origin + "/download"
    client_for(graph).request("GET", "/me/drive/items/1/content")
    [hop] = attacker.seen
    assert hop["method"] == "GET" and "Authorization" not in hop["headers"]

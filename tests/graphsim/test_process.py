"""graphsim/process.py: the simulator in a child process, driven through its control API."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from graphsim.process import SimulatorProcess, SimulatorProcessError


class _Receiver(BaseHTTPRequestHandler):
    """A notification endpoint: answers validation handshakes, counts notification POSTs."""

    protocol_version = "HTTP/1.1"
    posts: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("validationToken", [""])[0]
        reply = token.encode()
        if not token:
            type(self).posts.append(body)
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_child_process_serves_graph_and_control_calls() -> None:
    with SimulatorProcess() as sim:
        assert sim.pid > 0 and sim.graph_url == f"{sim.base_url}/v1.0"
        tenant = sim.create_tenant()
        client_id, secret = sim.register_app(tenant, redirect_uris=["http://localhost/cb"])
        user = sim.create_user(tenant, "Adele", f"adele@{tenant}.test")
        sim.set_consent_user(tenant, user)
        (event_id,) = sim.create_events(user, [{"subject": "seed", "start": {"dateTime": "2024-05-01T09:00:00",
                                                                             "timeZone": "UTC"},
                                                "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "UTC"}}])
        assert sim.update_event(user, event_id, subject="changed")["subject"] == "changed"

        # What the app sees over real HTTPS: a token for the registered app, then the changed event.
        s = requests.Session()
        s.verify, s.trust_env = sim.ca_file, False
        token = s.post(f"{sim.authority(tenant)}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
        seen = s.get(f"{sim.graph_url}/users/{user}/events/{event_id}",
                     headers={"Authorization": f"Bearer {token}"}).json()
        assert seen["subject"] == "changed"
        assert sim.counters()["GET /v1.0/users/{id}/events/{id}"] == 1

        # A subscription's notifications leave the child; flush waits until they were delivered.
        _Receiver.posts = []
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            created = s.post(f"{sim.graph_url}/subscriptions", headers={"Authorization": f"Bearer {token}"}, json={
                "changeType": "created,updated,deleted", "resource": f"users/{user}/events",
                "notificationUrl": f"http://127.0.0.1:{receiver.server_address[1]}/notify",
                "expirationDateTime": soon, "clientState": "x"})
            assert created.status_code == 201, created.text
            assert [sub["id"] for sub in sim.list_subscriptions()] == [created.json()["id"]]
            sim.update_event(user, event_id, subject="again")
            assert sim.flush_notifications(timeout=10)
            assert len(_Receiver.posts) == 1
            assert [item["changeType"] for item in json.loads(_Receiver.posts[0])["value"]] == ["updated"]
        finally:
            receiver.shutdown()
            receiver.server_close()

        with pytest.raises(SimulatorProcessError, match="404"):
            sim.update_event(user, "no-such-event", subject="x")
        proc = sim._proc
    assert proc is not None and proc.poll() is not None  # stop() ended the child


def test_a_child_that_cannot_start_is_reported() -> None:
    with pytest.raises(SimulatorProcessError, match="exited"):
        SimulatorProcess(extra_args=("--no-such-flag",), stderr=-3).start()  # -3: subprocess.DEVNULL

"""Real HTTP through the local host: function key required, JSON and binary answers."""

from __future__ import annotations

import pytest
import requests

from devhost import DevHost


@pytest.fixture
def host(outlook):
    h = DevHost(port=0, function_key="fkey", master_key="mkey", timers=False, queues=False).start()
    yield h
    h.stop()


def test_actions_over_real_http(outlook, host):
    base = host.base_url
    assert requests.get(f"{base}/api/actions", timeout=10).status_code == 401
    listing = requests.get(f"{base}/api/actions", headers={"x-functions-key": "fkey"}, timeout=10).json()
    assert len(listing["actions"]) == 28
    one = requests.get(f"{base}/api/actions/Create%20Event?code=fkey", timeout=10).json()
    assert one["slug"] == "create-event" and any(i["name"] == "start_timezone" for i in one["inputs"])

    created = requests.post(f"{base}/api/actions/create-calendar", headers={"x-functions-key": "fkey"},
                            json={"user_id": outlook.alice, "inputs": {"name": "Over HTTP"}}, timeout=10)
    assert created.status_code == 200 and created.json()["result"]["name"] == "Over HTTP"
    assert outlook.sim.counters().get("POST /v1.0/me/calendars") == 1

    outlook.sim.send_mail(outlook.alice, {"subject": "Bin", "body": {"contentType": "text", "content": "x"},
                                          "toRecipients": [{"emailAddress": {"address": outlook.bob_upn}}]})
    msg_id = next(m["id"] for m in outlook.sim.store.mailbox(outlook.bob).messages.values()
                  if m["subject"] == "Bin")
    raw = requests.post(f"{base}/api/actions/raw-request", headers={"x-functions-key": "fkey"}, json={
        "user_id": outlook.bob, "inputs": {"url": f"/me/messages/{msg_id}/$value", "response_type": "binary"}},
        timeout=10)
    assert raw.status_code == 200 and b"Subject: Bin" in raw.content
    assert raw.headers["Content-Type"].startswith("text/plain")

    refused = requests.post(f"{base}/api/actions/raw-request", headers={"x-functions-key": "fkey"}, json={
        "user_id": outlook.alice, "inputs": {"url": "https://example.org/steal"}}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ForeignHostRefused"

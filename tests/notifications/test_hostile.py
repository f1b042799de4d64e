"""Issue 12 items 4 and 9 on the anonymous receivers: forged batches cost one secret read, and
hostile JSON answers 4xx, never 500."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from shared.notifications import client_state, receiver
from tests.notifications.test_receiver import _item, _post, _queued


@pytest.fixture
def env(app_env):
    app_env()
    receiver.COUNTERS.__init__()
    return app_env


@pytest.fixture
def secret_reads(env, monkeypatch):
    """Counts reads that reach the secret store's backend (Key Vault in Azure), behaviour unchanged."""
    from shared.secrets import open_secret_store

    backend = open_secret_store().backend
    reads: list[str] = []
    real = backend.get

    def counting(name: str) -> str | None:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(backend, "get", counting)
    return reads


def test_unknown_kid_costs_one_secret_read_per_process_not_per_item(env, secret_reads):
    genuine = client_state.issue(client_state.SYNC, "alice")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(genuine.notification_url).query))
    forged_url = "http://127.0.0.1:7071/api/graph/notifications?" + urllib.parse.urlencode(
        {"sid": query["sid"], "kid": "deadbeef"})
    batch = json.dumps({"value": [_item(genuine)] * 5000}).encode()
    secret_reads.clear()
    for _ in range(3):
        answer = _post("graph_notifications", forged_url, batch)
        assert answer.status_code == 202
    assert secret_reads == ["notify-key-deadbeef"]  # was 15,000 reads (one per item, every request)
    assert _queued("calendar-sync") == []
    assert receiver.counters()["rejected"] == 15_000


def test_unknown_kids_remembered_are_bounded(env, secret_reads):
    sid = client_state.encode_sid(client_state.SYNC, "alice")
    for n in range(client_state.MAX_UNKNOWN_KIDS + 50):
        assert client_state.verify(sid, f"k{n}", "x") is None
    assert len(client_state._unknown_kids()) == client_state.MAX_UNKNOWN_KIDS
    assert "k0" not in client_state._unknown_kids()  # the oldest went first


def test_a_genuine_kid_still_verifies_after_a_miss_expired(env, monkeypatch):
    target = client_state.issue(client_state.SYNC, "alice")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target.notification_url).query))
    assert client_state.verify(query["sid"], query["kid"], target.client_state).value == "alice"


DEEP = b'{"value": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.parametrize("name", ["graph_notifications", "graph_lifecycle"])
@pytest.mark.parametrize("make_body", [
    lambda t: DEEP,
    lambda t: json.dumps({"value": [{"clientState": "\ud800"}]}).encode(),
    lambda t: json.dumps({"value": [_item(t, clientState="a\udfffb")]}).encode(),
    lambda t: json.dumps({"value": [_item(t, lifecycleEvent=[])]}).encode(),
    lambda t: json.dumps({"value": [_item(t, lifecycleEvent={"a": 1})]}).encode(),
    lambda t: json.dumps({"value": [_item(t, subscriptionId="\ud800")]}).encode(),
    lambda t: json.dumps({"\ud800": 1, "value": []}).encode(),
    lambda t: b'{"value": [' + b'{"a":' * 900 + b"1" + b"}" * 900 + b"]}",
], ids=["deep", "surrogate-state", "surrogate-in-genuine-batch", "lifecycle-list", "lifecycle-object",
        "surrogate-subscription", "surrogate-key", "deep-objects"])
def test_hostile_json_is_4xx_never_500(env, name, make_body):
    target = client_state.issue(client_state.SYNC, "alice")
    answer = _post(name, target.notification_url, make_body(target))
    body = answer.get_body()
    assert 200 <= answer.status_code < 500, (answer.status_code, body)
    assert b"Traceback" not in body

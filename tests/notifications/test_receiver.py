"""The notification and lifecycle receivers: handshake, clientState, queue messages, 4xx on bad input."""

from __future__ import annotations

import json
import urllib.parse

import azure.functions as func
import pytest

from shared.notifications import client_state, receiver
from tests.feed.contract import validate


def _post(name: str, url: str, body: bytes, content_type: str | None = "application/json") -> func.HttpResponse:
    import function_app
    from devhost.host import registered_functions

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))
    headers = {"Content-Type": content_type} if content_type else {}
    request = func.HttpRequest("POST", url, headers=headers, params=query, body=body)
    for registered in registered_functions(function_app.app):
        if registered.get_function_name() == name:
            return registered.get_user_function()(request)
    raise KeyError(name)


def _queued(name: str) -> list[dict]:
    from shared.queues import open_queue

    return [json.loads(m.body) for m in open_queue(name).peek(32)]


def _item(target, **extra) -> dict:
    return {"subscriptionId": "sub-1", "clientState": target.client_state, "changeType": "updated",
            "resource": "Users/x/Events/AAA", "resourceData": {"id": "AAA"}, **extra}


@pytest.fixture
def env(app_env):
    app_env()
    receiver.COUNTERS.__init__()  # a fresh count per test
    return app_env


def test_validation_token_is_echoed_as_plain_text(env):
    token = "Validation: Testing client application reachability for subscription Request-Id: 1+2%3"
    url = "http://127.0.0.1:7071/api/graph/notifications?" + urllib.parse.urlencode({"validationToken": token})
    for name in ("graph_notifications", "graph_lifecycle"):
        answer = _post(name, url, b"", content_type="text/plain")
        assert answer.status_code == 200
        assert answer.mimetype == "text/plain"
        assert answer.get_body().decode() == token
    too_long = "http://x/api/graph/notifications?validationToken=" + "a" * 5000
    assert _post("graph_notifications", too_long, b"").status_code == 400


def test_valid_batch_becomes_one_sync_request_per_user(env):
    alice = client_state.issue(client_state.SYNC, "alice")
    batch = {"value": [_item(alice), _item(alice, changeType="created"), _item(alice, changeType="deleted")]}
    answer = _post("graph_notifications", alice.notification_url, json.dumps(batch).encode())
    assert answer.status_code == 202
    queued = _queued("calendar-sync")
    assert [(m["user_id"], m["reason"]) for m in queued] == [("alice", "notification")]
    assert receiver.counters()["accepted"] == 3


def test_wrong_client_state_changes_nothing_and_answers_202(env):
    alice = client_state.issue(client_state.SYNC, "alice")
    forged = {"value": [{**_item(alice), "clientState": "x" * 43}, {**_item(alice), "clientState": None}]}
    answer = _post("graph_notifications", alice.notification_url, json.dumps(forged).encode())
    assert answer.status_code == 202
    assert _queued("calendar-sync") == []
    assert receiver.counters()["rejected"] == 2
    # A genuine clientState sent to another user's URL is rejected too (the sid is part of the MAC).
    bob = client_state.issue(client_state.SYNC, "bob")
    answer = _post("graph_notifications", bob.notification_url, json.dumps({"value": [_item(alice)]}).encode())
    assert answer.status_code == 202 and _queued("calendar-sync") == []
    no_query = "http://127.0.0.1:7071/api/graph/notifications"
    assert _post("graph_notifications", no_query, json.dumps({"value": [_item(alice)]}).encode()).status_code == 202
    assert _queued("calendar-sync") == []


def test_lifecycle_items_become_resync_requests(env):
    alice = client_state.issue(client_state.SYNC, "alice")
    batch = {"value": [{"subscriptionId": "sub-1", "clientState": alice.client_state, "lifecycleEvent": event}
                       for event in ("missed", "subscriptionRemoved", "missed")]}
    assert _post("graph_lifecycle", alice.lifecycle_notification_url, json.dumps(batch).encode()).status_code == 202
    queued = sorted(_queued("calendar-sync"), key=lambda m: m["lifecycle_event"])
    assert [(m["reason"], m["lifecycle_event"], m["subscription_id"]) for m in queued] == [
        ("resync", "missed", "sub-1"), ("resync", "subscriptionRemoved", "sub-1")]


def test_outbound_subscriptions_publish_the_notification(env):
    target = client_state.issue(client_state.OUTBOUND, "inbox-watch")
    answer = _post("graph_notifications", target.notification_url, json.dumps({"value": [_item(target)]}).encode())
    assert answer.status_code == 202
    assert _queued("calendar-sync") == []
    assert _queued("outlook-changes") == []  # row changes only: notifications have their own queue
    (message,) = _queued("outlook-notifications")
    assert message["label"] == "inbox-watch" and message["type"] == "notification"
    assert "clientState" not in message["notification"]
    validate(message)


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b"[]", "application/json", 400),
    (b'{"value": {}}', "application/json", 400),
    (b"", "application/json", 400),
    (b'{"value": []}', "text/html", 415),
    (b'{"value": []}', None, 415),
    (b"{" + b" " * (receiver.MAX_BODY_BYTES + 1) + b"}", "application/json", 413),
])
def test_malformed_requests_answer_4xx_with_a_message(env, body, content_type, status):
    alice = client_state.issue(client_state.SYNC, "alice")
    answer = _post("graph_notifications", alice.notification_url, body, content_type)
    assert answer.status_code == status
    assert json.loads(answer.get_body())["error"]
    assert _queued("calendar-sync") == []


def test_queue_down_answers_503_so_graph_retries(env):
    alice = client_state.issue(client_state.SYNC, "alice")

    def broken(routed):
        raise OSError("queue unreachable")

    reply = receiver.handle(json.dumps({"value": [_item(alice)]}).encode(), "application/json",
                            {"sid": alice.sid, "kid": alice.kid}, enqueue=broken)
    assert reply.status == 503
    assert receiver.counters()["enqueue_failures"] == 1


def test_a_calendars_notifications_become_one_request_for_that_calendar(env):
    """The signed routing id names the calendar; the queue message carries it, one per calendar."""
    team = client_state.issue(client_state.SYNC, "alice", calendar_id="AAMk/team+1==")
    travel = client_state.issue(client_state.SYNC, "alice", calendar_id="AAMk-travel")
    for target in (team, team, travel):
        batch = {"value": [_item(target), _item(target, changeType="created")]}
        assert _post("graph_notifications", target.notification_url, json.dumps(batch).encode()).status_code == 202
    lifecycle = {"value": [_item(team, lifecycleEvent="missed")]}
    assert _post("graph_lifecycle", team.lifecycle_notification_url, json.dumps(lifecycle).encode()).status_code == 202
    messages = _queued("calendar-sync")
    assert [(m["user_id"], m["calendar_id"], m["reason"]) for m in messages] == [
        ("alice", "AAMk/team+1==", "notification"), ("alice", "AAMk/team+1==", "notification"),
        ("alice", "AAMk-travel", "notification"), ("alice", "AAMk/team+1==", "resync")]
    assert messages[-1]["lifecycle_event"] == "missed"
    # A calendar routing signed for Alice cannot be replayed for another calendar: the sid is in the MAC.
    forged = client_state.encode_sid(client_state.SYNC, "alice", "AAMk-other")
    assert client_state.verify(forged, team.kid, team.client_state) is None

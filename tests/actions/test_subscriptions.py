"""Subscription actions: created against this app's receiver by default, listed and deleted per instance."""

from __future__ import annotations

import datetime as dt

import pytest

from graphsim.receiver import Receiver
from tests.actions.helpers import hits, ok


@pytest.fixture
def other_receiver():
    r = Receiver()
    yield r
    r.close()


def _expiry(sub: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(sub["expirationDateTime"][:19]).replace(tzinfo=dt.UTC)


def test_event_subscription_defaults_duplicates_and_renewal(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    sub = ok(call("create-event-subscription", {"user_id": alice}))
    assert sub["created"] is True and hits(sim, "POST /v1.0/subscriptions") == 1
    assert sub["notificationUrl"].startswith(outlook.receiver_base + "/api/graph/notifications?")
    assert sub["lifecycleNotificationUrl"].startswith(outlook.receiver_base + "/api/graph/lifecycle?")
    assert sub["resource"] == "me/events" and sub["changeType"] == "created,updated,deleted"
    assert outlook.receiver.validations  # Graph's handshake reached the default URL
    minutes = (_expiry(sub) - dt.datetime.now(dt.UTC)).total_seconds() / 60
    assert 10060 < minutes <= 10070  # the seed's default: now + 10,070 minutes
    from shared.notifications.client_state import verify

    q = dict(p.split("=", 1) for p in sub["notificationUrl"].split("?", 1)[1].split("&"))
    routing = verify(q["sid"], q["kid"], sub["clientState"])
    assert routing is not None and routing.kind == "out"

    again = ok(call("create-event-subscription", {"user_id": alice}))
    assert again["created"] is False and again["id"] == sub["id"]
    assert hits(sim, "POST /v1.0/subscriptions") == 1
    dup = ok(call("create-event-subscription", {"user_id": alice, "inputs": {"allow_duplicates": True}}))
    assert dup["created"] is True and dup["id"] != sub["id"]

    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).replace(microsecond=0)
    renewed = ok(call("update-event-subscription-expiration", {"user_id": alice, "inputs": {
        "subscription_id": sub["id"], "expiration": when.strftime("%Y-%m-%dT%H:%M:%S")}}))
    assert _expiry(renewed) == when and hits(sim, "PATCH /v1.0/subscriptions/{id}") == 1
    truth = next(s for s in sim.list_subscriptions() if s["id"] == sub["id"])
    assert _expiry(truth) == when
    default_renewal = ok(call("update-event-subscription-expiration", {"user_id": alice, "inputs": {
        "subscription_id": sub["id"]}}))
    assert _expiry(default_renewal) > when


def test_expiration_over_graph_limit_is_an_error_when_explicit(outlook, call):
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body, _ = call("create-event-subscription", {"user_id": outlook.alice, "inputs": {"expiration": far}})
    assert status in (400, 403) and "10080" in body["error"]["message"]


def test_default_expiration_steps_down_to_the_limit_graph_names(outlook, app_env, call, monkeypatch):
    """A tenant whose limit is 4,230 minutes: the default (10,070) is refused, the named limit used."""
    monkeypatch.setattr(outlook.sim.subscriptions, "lifetime_limit_minutes", 4230)
    from shared.auth.tokens import get_token_service
    from tests.actions.conftest import delegated_token

    token = delegated_token(outlook.sim, outlook.tenant, outlook.client_id,
                            outlook.secret, outlook.alice)
    get_token_service().remember(outlook.alice, token["access_token"], token["expires_in"])
    sub = ok(call("create-event-subscription", {"user_id": outlook.alice}))
    assert (_expiry(sub) - dt.datetime.now(dt.UTC)).total_seconds() / 60 < 4230
    assert hits(outlook.sim, "POST /v1.0/subscriptions") == 2


def test_mail_folder_subscription(outlook, call):
    sub = ok(call("create-mail-folder-subscription", {"user_id": outlook.alice, "inputs": {
        "mail_change_types": "created,updated"}}))
    assert sub["resource"] == "me/mailFolders('inbox')/messages" and sub["changeType"] == "created,updated"
    assert any(s["id"] == sub["id"] for s in outlook.sim.list_subscriptions())
    status, body, _ = call("create-mail-folder-subscription", {"user_id": outlook.alice, "inputs": {
        "mail_change_types": "moved"}})
    assert status == 400 and body["error"]["input"] == "mail_change_types"


def test_list_and_delete_instance_subscriptions(outlook, call, cli, other_receiver):
    sim, alice = outlook.sim, outlook.alice
    mine = [ok(call("create-event-subscription", {"user_id": alice}))["id"],
            ok(call("create-mail-folder-subscription", {"user_id": alice, "inputs": {
                "mail_change_types": ["created"]}}))["id"]]
    foreign = ok(call("create-event-subscription", {"user_id": alice, "inputs": {
        "notification_url": other_receiver.url, "lifecycle_notification_url": other_receiver.url}}))
    listed = ok(call("list-subscriptions", {"user_id": alice}))
    assert sorted(s["id"] for s in listed["value"]) == sorted(mine)
    code, everything, err = cli("action", "list-subscriptions", "--user", alice, "show_instance_webhooks=false")
    assert code == 0, err
    assert sorted(s["id"] for s in everything["value"]) == sorted([*mine, foreign["id"]])

    gone = ok(call("delete-subscription", {"user_id": alice, "inputs": {"subscription_id": mine[0]}}))
    assert gone["deleted"] == mine[0] and hits(sim, "DELETE /v1.0/subscriptions/{id}") == 1

    ok(call("create-event-subscription", {"user_id": alice}))
    result = ok(call("delete-all-instance-subscriptions", {"user_id": alice}))
    assert result["ok"] is True and len(result["deleted"]) == 2 and result["failed"] == []
    assert hits(sim, "POST /v1.0/$batch") == 1
    assert [s["id"] for s in sim.list_subscriptions()] == [foreign["id"]]

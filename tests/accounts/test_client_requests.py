"""Acceptance 6: WebhookDB's LINKED / REFRESHED / RESYNC / UNLINKED requests, including the 400s."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.accounts.conftest import queued, refresh_token_for
from tests.accounts.helpers import post_json

URL = "http://127.0.0.1:7071/api/users"


def call(payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    answer = post_json("users", URL, body)
    return answer.status_code, json.loads(answer.get_body())


def test_users_route_needs_a_function_key():
    import function_app
    from devhost.host import registered_functions

    users = next(f for f in registered_functions(function_app.app) if f.get_function_name() == "users")
    assert users.get_trigger().auth_level.name == "FUNCTION"
    assert users.get_trigger().methods[0].name == "POST"


@pytest.mark.parametrize(("payload", "message"), [
    (b"not json", "body must be JSON"),
    ([1, 2], "body must be a JSON object"),
    ({}, "missing field: type"),
    ({"type": "DELETED", "microsoft_user_id": "u"}, "unknown type: 'DELETED'"),
    ({"type": "LINKED", "refresh_token": "x"}, "missing field: microsoft_user_id"),
    ({"type": "RESYNC", "microsoft_user_id": ""}, "missing field: microsoft_user_id"),
    ({"type": "LINKED", "microsoft_user_id": "u"}, "missing field: refresh_token"),
    ({"type": "REFRESHED", "microsoft_user_id": "u", "refresh_token": 5}, "missing field: refresh_token"),
])
def test_malformed_requests_are_400_naming_the_problem(repo, payload, message):
    status, body = call(payload)
    assert status == 400
    assert message in body["error"]
    assert repo.list_users() == []


def test_linked_validates_stores_encrypted_and_queues(sim_app):
    token = refresh_token_for(sim_app, sim_app.alice)
    status, body = call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": token})
    assert status == 200 and body["graph_user_id"] == sim_app.alice
    row = sim_app.repo.get_user("crm-1")
    assert row.data["userPrincipalName"].startswith("alice@")
    assert token not in row.encrypted_refresh_token
    account = sim_app.repo.get_account("crm-1")
    assert (account.status, account.mode, account.graph_user_id) == ("linked", "delegated", sim_app.alice)
    assert [(m["user_id"], m["reason"], m.get("full"), m.get("subscribe")) for m in queued()] == [
        ("crm-1", "linked", True, True)]


def test_linked_with_a_rejected_token_is_400_and_stores_nothing(sim_app):
    status, body = call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": "1.Abogus"})
    assert status == 400
    assert "rejected" in body["error"]
    assert sim_app.repo.get_user("crm-1") is None and queued() == []


def test_refreshed_replaces_the_token(sim_app):
    from shared.crypto import get_token_cipher

    call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": refresh_token_for(sim_app, sim_app.alice)})
    newer = refresh_token_for(sim_app, sim_app.alice)
    status, _ = call({"type": "REFRESHED", "microsoft_user_id": "crm-1", "refresh_token": newer})
    assert status == 200
    row = sim_app.repo.get_user("crm-1")
    assert get_token_cipher().decrypt(row.encrypted_refresh_token, "crm-1") == newer
    assert len(queued()) == 1  # a linked account needs no resync for a new token


def test_refreshed_for_an_unknown_user_links_it(sim_app):
    status, body = call({"type": "REFRESHED", "microsoft_user_id": "crm-9",
                         "refresh_token": refresh_token_for(sim_app, sim_app.bob)})
    assert status == 200 and body["status"] == "linked"
    assert sim_app.repo.get_account("crm-9").graph_user_id == sim_app.bob


def test_resync_queues_a_full_sync_and_404s_unknown_users(sim_app):
    call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": refresh_token_for(sim_app, sim_app.alice)})
    status, _ = call({"type": "RESYNC", "microsoft_user_id": "crm-1"})
    assert status == 202
    last = queued()[-1]
    assert (last["user_id"], last["reason"], last.get("full")) == ("crm-1", "resync", True)
    status, body = call({"type": "RESYNC", "microsoft_user_id": "nobody"})
    assert status == 404 and "nobody" in body["error"]


def test_unlinked_deletes_the_subscription_and_every_row(sim_app, webhook_receiver):
    from shared.auth.tokens import get_token_service
    from shared.graph.factory import client_for_user

    call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": refresh_token_for(sim_app, sim_app.alice)})
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sub = client_for_user("crm-1").post("/subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": webhook_receiver.url,
        "resource": "me/events", "expirationDateTime": expires, "clientState": "s"})
    sim_app.repo.set_events_subscription("crm-1", sub["id"], dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    sim_app.repo.upsert_calendars("crm-1", [{"id": "cal-1", "name": "Calendar", "isDefaultCalendar": True}])
    assert [c.microsoft_calendar_id for c in sim_app.repo.list_calendars("crm-1")] == ["cal-1"]
    assert [s["id"] for s in sim_app.sim.list_subscriptions()] == [sub["id"]]
    get_token_service().invalidate("crm-1")

    status, body = call({"type": "UNLINKED", "microsoft_user_id": "crm-1"})
    assert status == 200 and body["subscription_deleted"] is True
    assert sim_app.sim.list_subscriptions() == []
    assert sim_app.repo.get_user("crm-1") is None and sim_app.repo.get_account("crm-1") is None
    assert sim_app.repo.list_calendars("crm-1") == []

    status, body = call({"type": "UNLINKED", "microsoft_user_id": "crm-1"})  # idempotent
    assert status == 200 and body["existed"] is False


def test_unlinked_still_removes_rows_when_the_grant_is_dead(sim_app):
    call({"type": "LINKED", "microsoft_user_id": "crm-1", "refresh_token": refresh_token_for(sim_app, sim_app.alice)})
    sim_app.repo.set_events_subscription("crm-1", "sub-gone", None)
    sim_app.sim.revoke_refresh_tokens(sim_app.alice)
    from shared.auth.tokens import get_token_service

    get_token_service().invalidate("crm-1")
    status, body = call({"type": "UNLINKED", "microsoft_user_id": "crm-1"})
    assert status == 200 and body["subscription_deleted"] is False
    assert sim_app.repo.get_user("crm-1") is None

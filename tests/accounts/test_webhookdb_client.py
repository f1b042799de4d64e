"""A client built for WebhookDB, unchanged but for its URL: LINK/REFRESH/UNLINK, `Whdb-Webhook-Secret`,
its own fields kept in `data`, through the local Functions host (which enforces auth levels)."""

from __future__ import annotations

import json

import pytest

from tests.accounts.conftest import queued, refresh_token_for

SECRET = "whdb-shared-secret-4f1c"


@pytest.fixture
def host(sim_app):
    from devhost.host import DevHost
    from shared.secrets import open_secret_store

    open_secret_store(sim_app.settings).set("whdb-webhook-secret", SECRET)
    with DevHost(port=0, function_key="fkey", master_key="mkey", timers=False, queues=False) as server:
        yield server


def send(host, payload: dict, headers: dict[str, str], path: str = "/api/webhookdb/users") -> tuple[int, dict]:
    answer = host.dispatch("POST", path, {"Content-Type": "application/json", **headers},
                           json.dumps(payload).encode())
    return answer.status_code, json.loads(answer.get_body())


def whdb(secret: str = SECRET) -> dict[str, str]:
    return {"Whdb-Webhook-Secret": secret}


def test_webhookdb_requests_work_unchanged(sim_app, host):
    token = refresh_token_for(sim_app, sim_app.alice)
    status, body = send(host, {"type": "LINK", "microsoft_user_id": "crm-1", "refresh_token": token,
                               "customer_ref": "acct-77", "plan": {"tier": "gold"}}, whdb())
    assert status == 200 and body["status"] == "linked"
    row = sim_app.repo.get_user("crm-1")
    assert row.data["customer_ref"] == "acct-77" and row.data["plan"] == {"tier": "gold"}
    assert row.data["userPrincipalName"].startswith("alice@")  # the /me profile beside them
    assert not {"refresh_token", "type", "microsoft_user_id"} & set(row.data)
    assert token not in json.dumps(row.data)

    newer = refresh_token_for(sim_app, sim_app.alice)
    status, _ = send(host, {"type": "REFRESH", "microsoft_user_id": "crm-1", "refresh_token": newer,
                            "plan": "silver"}, whdb())
    assert status == 200
    row = sim_app.repo.get_user("crm-1")
    assert (row.data["customer_ref"], row.data["plan"]) == ("acct-77", "silver")
    assert newer not in json.dumps(row.data)

    status, body = send(host, {"type": "UNLINK", "microsoft_user_id": "crm-1"}, whdb())
    assert status == 200 and body["existed"] is True
    assert sim_app.repo.get_user("crm-1") is None


@pytest.mark.parametrize("headers", [{}, {"Whdb-Webhook-Secret": "wrong"}, {"Whdb-Webhook-Secret": SECRET[:-1]},
                                     {"x-functions-key": "fkey"}])
def test_wrong_or_missing_secret_is_401_and_changes_nothing(sim_app, host, headers):
    status, body = send(host, {"type": "RESYNC", "microsoft_user_id": "crm-1"}, headers)
    assert status == 401 and "Whdb-Webhook-Secret" in body["error"]
    assert queued() == []


def test_route_stays_closed_until_the_secret_is_stored(sim_app, host, monkeypatch):
    """Without the secret every request is a 401, and anonymous callers cannot turn into one
    secret-store (Key Vault) read each: the absence is remembered for a minute."""
    from shared.secrets import open_secret_store

    store = open_secret_store(sim_app.settings)
    store.delete("whdb-webhook-secret")
    reads = []
    real_get = store.backend.get
    monkeypatch.setattr(store.backend, "get", lambda name: reads.append(name) or real_get(name))
    for guess in ("", "guess-1", "guess-2", SECRET):
        status, _ = send(host, {"type": "RESYNC", "microsoft_user_id": "crm-1"}, whdb(guess))
        assert status == 401
    assert reads == ["whdb-webhook-secret"]


def test_function_keys_keep_working_and_the_key_route_still_needs_one(sim_app, host):
    token = refresh_token_for(sim_app, sim_app.alice)
    payload = {"type": "LINK", "microsoft_user_id": "crm-2", "refresh_token": token}
    assert send(host, payload, whdb(), path="/api/users")[0] == 401  # the secret is no function key
    status, body = send(host, payload, {"x-functions-key": "fkey"}, path="/api/users")
    assert status == 200 and body["graph_user_id"] == sim_app.alice


def test_oversized_client_fields_are_refused(sim_app, host):
    status, body = send(host, {"type": "LINK", "microsoft_user_id": "crm-1", "refresh_token": "x",
                               "blob": "y" * 40_000}, whdb())
    assert status == 400 and "exceed" in body["error"]
    assert sim_app.repo.get_user("crm-1") is None


def test_refreshed_after_reauth_syncs_at_once(sim_app, host, monkeypatch):
    """An account waiting for re-consent: REFRESHED queues a full sync, and the worker runs it."""
    from shared.auth.errors import ReauthRequired
    from shared.auth.tokens import get_token_service
    from shared.sync.worker import handle_message

    monkeypatch.setattr("shared.sync.worker._subscribe", lambda *_: None)
    send(host, {"type": "LINK", "microsoft_user_id": "crm-1",
                "refresh_token": refresh_token_for(sim_app, sim_app.alice)}, whdb())
    sim_app.sim.revoke_refresh_tokens(sim_app.alice)
    service = get_token_service()
    service.invalidate("crm-1")
    with pytest.raises(ReauthRequired):
        service.access_token("crm-1")
    from shared.queues import SYNC_QUEUE, open_queue

    queue = open_queue(SYNC_QUEUE)
    for message in queue.receive(32, visibility_timeout=1):
        queue.delete(message)

    status, _ = send(host, {"type": "REFRESH", "microsoft_user_id": "crm-1",
                            "refresh_token": refresh_token_for(sim_app, sim_app.alice)}, whdb())
    assert status == 200
    (message,) = queue.receive(32, visibility_timeout=60)
    assert json.loads(message.body)["full"] is True
    assert handle_message(message.body).status == "synced"
    assert sim_app.repo.list_calendars("crm-1")


def test_deeply_nested_client_fields_are_a_400_not_a_500(sim_app, host):
    nested = "[" * 50_000 + "]" * 50_000
    body = ('{"type": "RESYNC", "microsoft_user_id": "crm-1", "x": ' + nested + "}").encode()
    answer = host.dispatch("POST", "/api/webhookdb/users", {"Whdb-Webhook-Secret": SECRET}, body)
    assert answer.status_code == 400

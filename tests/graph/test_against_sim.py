"""GraphClient against the Graph simulator: 401 refresh, mailbox concurrency, paging, $batch."""

from __future__ import annotations

import threading

import pytest
import requests

from shared.graph import GraphClient, GraphError, app_client


@pytest.fixture
def tenant_app(graphsim, app_env, monkeypatch):
    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant)
    alice = graphsim.create_user(tenant, display_name="Alice", user_principal_name=f"alice@{tenant}.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    settings = app_env(AUTHORITY_HOST=graphsim.base_url, TENANT=tenant, GRAPH_BASE_URL=graphsim.graph_url,
                       CLIENT_ID=client_id)
    from shared.secrets import CLIENT_SECRET, open_secret_store

    open_secret_store(settings).set(CLIENT_SECRET, secret)
    return graphsim, alice, settings


def _client_credentials(sim, settings) -> str:
    from shared.secrets import CLIENT_SECRET, open_secret_store

    answer = requests.post(f"{sim.base_url}/{settings.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": settings.client_id,
        "client_secret": open_secret_store(settings).get(CLIENT_SECRET),
        "scope": "https://graph.microsoft.com/.default"}, verify=sim.ca_file, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


def test_expired_token_is_refreshed_once(tenant_app):
    sim, alice, settings = tenant_app
    state = {"token": _client_credentials(sim, settings), "invalidated": 0}

    def invalidate():
        state["invalidated"] += 1
        state["token"] = _client_credentials(sim, settings)

    client = GraphClient(settings.graph_base_url, lambda: state["token"], on_unauthorized=invalidate, mailbox=alice)
    assert client.get(f"/users/{alice}")["id"] == alice
    sim.expire_access_tokens()
    assert client.get(f"/users/{alice}")["id"] == alice  # 401 -> on_unauthorized -> new token -> retry
    assert state["invalidated"] == 1
    sim.expire_access_tokens()
    state["token"] = "garbage"
    client.on_unauthorized = lambda: None  # the refresh yields no better token: one retry, then the error
    with pytest.raises(GraphError) as info:
        client.get(f"/users/{alice}")
    assert info.value.status == 401 and info.value.attempts == 2


def test_app_client_uses_the_token_service(tenant_app):
    _sim, alice, settings = tenant_app
    client = app_client(settings, mailbox=alice)
    assert client.get(f"/users/{alice}")["id"] == alice
    assert client.mailbox == alice and client.prefer_headers == {"IdType": '"ImmutableId"'}


def test_never_more_than_four_in_flight_per_mailbox(tenant_app):
    sim, alice, settings = tenant_app
    sim.faults.set(latency_ms=60)
    client = app_client(settings, mailbox=alice)
    client.max_retries = 0  # a MailboxConcurrency 429 would surface as an error
    client.get(f"/users/{alice}")  # token first
    errors: list[Exception] = []

    def work():
        try:
            client.get(f"/users/{alice}/calendars")
        except GraphError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sim.counters()["GET /v1.0/users/{id}/calendars"] == 16

    unlimited = GraphClient(client.base_url, client.token_provider, mailbox=None, max_retries=0)
    threads = [threading.Thread(target=lambda: _swallow(unlimited, alice, errors)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(e.code == "ApplicationThrottled" for e in errors)  # the cap is what kept us under the limit


def _swallow(client: GraphClient, user: str, errors: list) -> None:
    try:
        client.get(f"/users/{user}/calendars")
    except GraphError as exc:
        errors.append(exc)


def test_paging_and_batch(tenant_app):
    sim, alice, settings = tenant_app
    for i in range(7):
        sim.create_calendar(alice, f"Cal {i}")
    client = app_client(settings, mailbox=alice)
    pages = list(client.pages(f"/users/{alice}/calendars", params={"$top": 3}))
    assert [len(p["value"]) for p in pages] == [3, 3, 2]
    answers = client.batch([{"method": "GET", "url": f"/users/{alice}/calendars/{p['id']}"}
                            for p in pages[0]["value"]] + [{"method": "GET", "url": f"/users/{alice}/events/nope"}])
    assert [a["status"] for a in answers] == [200, 200, 200, 404]
    assert [a["body"]["id"] for a in answers[:3]] == [c["id"] for c in pages[0]["value"]]

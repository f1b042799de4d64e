"""Fixtures of the keep-alive tests: the app pointed at the Graph simulator, accounts linked directly.

`keep.link(user, mode)` stores what sign-in (delegated: a real refresh token
from the simulator) or app-only onboarding would store, without queueing a
sync, so each test decides what runs. The validation handshake is answered by
graphsim's small Receiver standing in for the app's public URL; the
end-to-end tests use the devhost instead.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from graphsim.receiver import Receiver

CALLBACK = "http://127.0.0.1:7071/api/oauth/callback"


def refresh_token(sim, tenant: str, client_id: str, secret: str, user: str) -> str:
    """A real refresh token for `user` (authorize + token endpoints of the simulator)."""
    import urllib.parse

    import requests

    sim.set_consent_user(tenant, user)
    base = f"{sim.base_url}/{tenant}/oauth2/v2.0"
    scope = "User.Read Calendars.ReadWrite offline_access"
    answer = requests.get(f"{base}/authorize", params={
        "client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "scope": scope, "state": "x"},
        verify=sim.ca_file, allow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(f"{base}/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "authorization_code", "code": code,
        "redirect_uri": CALLBACK, "scope": scope}, verify=sim.ca_file, timeout=10)
    token.raise_for_status()
    return token.json()["refresh_token"]


def link(env: types.SimpleNamespace, user: str, mode: str = "delegated") -> str:
    """Store a linked account for simulator user `user` (its id is the microsoft_user_id)."""
    from shared.auth.tokens import get_token_service
    from shared.storage import open_repository

    repo = open_repository()
    repo.upsert_user(user, {"id": user})
    if mode == "delegated":
        get_token_service().store_refresh_token(
            user, refresh_token(env.sim, env.tenant, env.client_id, env.secret, user))
    repo.update_account(user, status="linked", mode=mode, graph_user_id=user)
    return user


def queued(queue: str | None = None) -> list[dict[str, Any]]:
    from shared.queues import SYNC_QUEUE, open_queue

    return [json.loads(m.body) for m in open_queue(queue or SYNC_QUEUE).peek(32)]


@pytest.fixture
def keep(graphsim, app_env, monkeypatch) -> Any:
    """A tenant, an app registration, four users; the app configured against the simulator."""
    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK])
    users = [graphsim.create_user(tenant, display_name=f"User {n}", user_principal_name=f"u{n}@{tenant}.test")
             for n in range(4)]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    receiver = Receiver()
    base = receiver.url.rsplit("/api/", 1)[0]
    settings = app_env(AUTHORITY_HOST=graphsim.base_url, TENANT=tenant, GRAPH_BASE_URL=graphsim.graph_url,
                       CLIENT_ID=client_id, APP_BASE_URL=base, GRAPH_MAX_RETRIES="3")
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository

    open_secret_store(settings).set(CLIENT_SECRET, secret)
    open_repository()
    env = types.SimpleNamespace(sim=graphsim, tenant=tenant, client_id=client_id, secret=secret, users=users,
                                settings=settings, receiver=receiver)
    env.link = lambda user, mode="delegated": link(env, user, mode)
    yield env
    receiver.close()

"""Fixtures of the accounts tests: the repository, and the app pointed at the Graph simulator."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

CALLBACK = "http://127.0.0.1:7071/api/oauth/callback"


class RepoHandle:
    """Forwards to the app's current repository: `app_env(...)` resets the process's
    singletons (closing the repository), so tests must not hold on to one object."""

    def current(self) -> Any:
        from shared.storage import open_repository

        repository = open_repository()
        repository.ensure_schema()
        return repository

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)


@pytest.fixture
def repo(app_env) -> RepoHandle:
    """The configured repository (embedded SQLite unless a test configures another backend)."""
    app_env()
    return RepoHandle()


def queued(settings=None) -> list[dict[str, Any]]:
    """Sync requests waiting on the sync queue."""
    from shared.queues import SYNC_QUEUE, open_queue

    return [json.loads(m.body) for m in open_queue(SYNC_QUEUE, settings).peek(100)]


@pytest.fixture
def sim_app(graphsim, app_env, repo, monkeypatch) -> types.SimpleNamespace:
    """A tenant with an app registration and two users; the app configured to use them."""
    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK])
    alice = graphsim.create_user(tenant, display_name="Alice", user_principal_name=f"alice@{tenant}.test")
    bob = graphsim.create_user(tenant, display_name="Bob", user_principal_name=f"bob@{tenant}.test")
    graphsim.set_consent_user(tenant, alice)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)

    def configure(**extra: str | None):  # type: ignore[no-untyped-def]
        env = {"AUTHORITY_HOST": graphsim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": graphsim.graph_url,
               "CLIENT_ID": client_id, **extra}
        settings = app_env(**env)
        from shared.secrets import CLIENT_SECRET, open_secret_store

        open_secret_store(settings).set(CLIENT_SECRET, secret)
        repo.current()  # schema in place before the app writes
        return settings

    settings = configure()
    return types.SimpleNamespace(sim=graphsim, tenant=tenant, client_id=client_id, secret=secret, alice=alice,
                                 bob=bob, settings=settings, configure=configure, repo=repo)


def refresh_token_for(sim_app, user: str) -> str:
    """A real refresh token for `user`, obtained through the simulator's authorize + token endpoints
    (what a customer's own consent screen would hand to LINKED)."""
    import urllib.parse

    import requests

    sim = sim_app.sim
    sim.set_consent_user(sim_app.tenant, user)
    base = f"{sim.base_url}/{sim_app.tenant}/oauth2/v2.0"
    answer = requests.get(f"{base}/authorize", params={
        "client_id": sim_app.client_id, "response_type": "code", "redirect_uri": CALLBACK,
        "scope": "User.Read Calendars.ReadWrite offline_access", "state": "x"},
        verify=sim.ca_file, allow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(f"{base}/token", data={
        "client_id": sim_app.client_id, "client_secret": sim_app.secret, "grant_type": "authorization_code",
        "code": code, "redirect_uri": CALLBACK, "scope": "User.Read Calendars.ReadWrite offline_access"},
        verify=sim.ca_file, timeout=10)
    token.raise_for_status()
    return token.json()["refresh_token"]

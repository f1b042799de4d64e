"""Fixtures of the sync tests: `world` is the simulator plus the app configured against it."""

from __future__ import annotations

import pytest

from tests.sync.world import CALLBACK, World


@pytest.fixture
def world(graphsim, app_env, monkeypatch) -> World:
    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    w = World(graphsim, tenant, client_id, secret, app_env, env={
        "AUTHORITY_HOST": graphsim.base_url, "TENANT": tenant, "GRAPH_BASE_URL": graphsim.graph_url,
        "CLIENT_ID": client_id, "GRAPH_PAGE_SIZE": "50"})
    w.configure()
    return w


@pytest.fixture
def no_subscribe(monkeypatch) -> None:
    """Worker tests without an HTTP host: Graph could not validate a subscription's URL."""
    monkeypatch.setattr("shared.sync.worker._subscribe", lambda request, repo, outcome: None)

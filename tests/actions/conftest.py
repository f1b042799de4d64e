"""An app configured against the Graph simulator, with Alice linked (delegated) and the app-only secret stored.

Surfaces under test: the registered HTTP function (`call`), real HTTP through
the dev host (`devhost`), and the CLI in-process (`cli`).
"""

from __future__ import annotations

import json
import types
import urllib.parse
from typing import Any

import azure.functions as func
import pytest
import requests

CALLBACK = "http://127.0.0.1:7071/api/auth/callback"
SCOPES = "User.Read Calendars.ReadWrite Mail.ReadWrite Mail.Send offline_access"


def delegated_token(sim, tenant: str, client_id: str, secret: str, user: str) -> dict[str, Any]:
    """A real delegated token for `user` from the simulator's authorize + token endpoints."""
    sim.set_consent_user(tenant, user)
    base = f"{sim.base_url}/{tenant}/oauth2/v2.0"
    answer = requests.get(f"{base}/authorize", params={
        "client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "scope": SCOPES,
        "state": "x"}, verify=sim.ca_file, allow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(f"{base}/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "authorization_code", "code": code,
        "redirect_uri": CALLBACK, "scope": SCOPES}, verify=sim.ca_file, timeout=10)
    token.raise_for_status()
    return token.json()


@pytest.fixture
def outlook(graphsim, app_env, monkeypatch, webhook_receiver) -> types.SimpleNamespace:
    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK])
    alice = graphsim.create_user(tenant, display_name="Alice", user_principal_name=f"alice@{tenant}.test")
    bob = graphsim.create_user(tenant, display_name="Bob", user_principal_name=f"bob@{tenant}.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    receiver_base = webhook_receiver.url.rsplit("/api/", 1)[0]
    settings = app_env(AUTHORITY_HOST=graphsim.base_url, TENANT=tenant, GRAPH_BASE_URL=graphsim.graph_url,
                       CLIENT_ID=client_id, APP_BASE_URL=receiver_base)
    from shared.secrets import CLIENT_SECRET, open_secret_store

    open_secret_store(settings).set(CLIENT_SECRET, secret)
    token = delegated_token(graphsim, tenant, client_id, secret, alice)
    from shared.auth.tokens import get_token_service

    get_token_service().remember(alice, token["access_token"], token["expires_in"])
    token = delegated_token(graphsim, tenant, client_id, secret, bob)
    get_token_service().remember(bob, token["access_token"], token["expires_in"])
    graphsim.reset_counters()
    return types.SimpleNamespace(sim=graphsim, tenant=tenant, client_id=client_id, secret=secret, alice=alice, bob=bob,
                                 alice_upn=f"alice@{tenant}.test", bob_upn=f"bob@{tenant}.test",
                                 settings=settings, receiver=webhook_receiver, receiver_base=receiver_base)


def _functions() -> dict[str, Any]:
    import function_app
    from devhost.host import registered_functions

    return {f.get_function_name(): f.get_user_function() for f in registered_functions(function_app.app)}


@pytest.fixture
def call():
    """POST /api/actions/{action} through the registered function; returns (status, body, headers)."""
    functions = _functions()

    def invoke(action: str, body: Any = None, *, raw: bytes | None = None):
        req = func.HttpRequest(method="POST", url=f"http://localhost/api/actions/{action}",
                               body=raw if raw is not None else json.dumps(body or {}).encode(),
                               route_params={"action": action}, headers={"Content-Type": "application/json"})
        resp = functions["run_action"](req)
        content = resp.get_body()
        ctype = resp.headers.get("Content-Type") or resp.mimetype or ""
        parsed = json.loads(content) if "json" in ctype and content else content
        return resp.status_code, parsed, resp.headers

    return invoke


@pytest.fixture
def cli(capsys):
    """Run `python -m shared ...` in-process; returns (exit code, parsed stdout JSON or text, stderr)."""
    from shared.cli import main

    def run(*argv: str):
        code = main(list(argv))
        out, err = capsys.readouterr()
        try:
            return code, json.loads(out), err
        except ValueError:
            return code, out, err

    return run

"""Acceptance 1: start -> authorize -> callback against the simulator with the real MSAL."""

from __future__ import annotations

import urllib.parse

import requests

from tests.accounts.conftest import CALLBACK, queued
from tests.accounts.helpers import get

START = "http://127.0.0.1:7071/api/oauth/start"


def _authorize(sim_app, start_url: str = START) -> tuple[str, str]:
    """Follow /api/oauth/start to the simulator; returns (authorize URL, callback URL)."""
    answer = get("oauth_start", start_url)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(f"{sim_app.sim.base_url}/{sim_app.tenant}/oauth2/v2.0/authorize?")
    consent = requests.get(location, verify=sim_app.sim.ca_file, allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    return location, consent.headers["Location"]


def test_signin_stores_encrypted_token_and_queues_first_sync(sim_app):
    location, callback = _authorize(sim_app)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"]  # PKCE
    assert "offline_access" in query["scope"][0].split()
    assert callback.startswith(CALLBACK + "?")

    page = get("oauth_callback", callback)
    assert page.status_code == 200, page.get_body()
    assert b"Alice" in page.get_body()

    row = sim_app.repo.get_user(sim_app.alice)
    assert row is not None and row.data["displayName"] == "Alice"
    assert row.encrypted_refresh_token.startswith("v1.")
    account = sim_app.repo.get_account(sim_app.alice)
    assert (account.status, account.mode, account.graph_user_id) == ("linked", "delegated", sim_app.alice)
    from shared.crypto import get_token_cipher

    refresh_token = get_token_cipher().decrypt(row.encrypted_refresh_token, sim_app.alice)
    assert refresh_token not in row.encrypted_refresh_token
    assert [(m["user_id"], m["reason"], m.get("full"), m.get("subscribe")) for m in queued()] == [
        (sim_app.alice, "linked", True, True)]

    # Replaying the same callback URL: 400 and nothing more stored or queued.
    before = (row, sim_app.repo.get_account(sim_app.alice))
    replay = get("oauth_callback", callback)
    assert replay.status_code == 400
    assert b"already used" in replay.get_body()
    assert (sim_app.repo.get_user(sim_app.alice), sim_app.repo.get_account(sim_app.alice)) == before
    assert len(queued()) == 1


def test_signin_binds_the_callers_own_user_id(sim_app):
    _, callback = _authorize(sim_app, START + "?microsoft_user_id=crm-42")
    assert get("oauth_callback", callback).status_code == 200
    row = sim_app.repo.get_user("crm-42")
    assert row is not None and row.data["id"] == sim_app.alice
    assert sim_app.repo.get_account("crm-42").graph_user_id == sim_app.alice
    assert sim_app.repo.get_user(sim_app.alice) is None
    assert queued()[0]["user_id"] == "crm-42"


def test_denied_consent_is_a_400_page_and_stores_nothing(sim_app):
    sim_app.sim.deny_consent(True)
    _, callback = _authorize(sim_app)
    assert "error=access_denied" in callback
    page = get("oauth_callback", callback)
    assert page.status_code == 400
    assert b"declined" in page.get_body()
    assert b"Traceback" not in page.get_body()
    assert sim_app.repo.list_users() == [] and queued() == []


def test_unknown_state_and_missing_parameters_are_400(sim_app):
    _, callback = _authorize(sim_app)
    forged = callback.replace("state=", "state=x")
    assert get("oauth_callback", forged).status_code == 400
    assert get("oauth_callback", CALLBACK).status_code == 400
    assert get("oauth_callback", CALLBACK + "?code=abc").status_code == 400
    assert sim_app.repo.list_users() == [] and queued() == []
    # The real flow still completes afterwards (the forged state did not consume it).
    assert get("oauth_callback", callback).status_code == 200


def test_failed_code_exchange_is_a_400_page(sim_app):
    _, callback = _authorize(sim_app)
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["code"] = "1.Anot-a-real-code"
    page = get("oauth_callback", f"{CALLBACK}?{urllib.parse.urlencode(query)}")
    assert page.status_code == 400
    assert b"could not be redeemed" in page.get_body()
    assert sim_app.repo.list_users() == [] and queued() == []


def test_expired_flow_is_refused(sim_app, monkeypatch):
    _, callback = _authorize(sim_app)
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 601)
    page = get("oauth_callback", callback)
    assert page.status_code == 400
    assert sim_app.repo.list_users() == []


def test_start_without_configuration_is_a_clean_500(app_env):
    app_env()  # no CLIENT_ID, no client secret
    answer = get("oauth_start", START)
    assert answer.status_code == 500
    assert b"Traceback" not in answer.get_body()


def test_refused_authorization_names_the_aadsts_line_only(sim_app):
    """Entra ID puts trace id, correlation id and time on their own lines of error_description."""
    sim_app.sim.identity.apps[sim_app.client_id].delegated_permissions = ["User.Read"]
    _, callback = _authorize(sim_app)
    assert "error=consent_required" in callback
    page = get("oauth_callback", callback)
    assert page.status_code == 400
    assert b"AADSTS65001" in page.get_body()
    assert b"Trace ID" not in page.get_body() and b"Correlation" not in page.get_body()

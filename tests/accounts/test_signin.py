"""Acceptance 1: start -> authorize -> callback against the simulator with the real MSAL."""

from __future__ import annotations

import json
import urllib.parse

import pytest
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
    assert (sim_app.repo.get_user(sim_app.alice), sim_app.repo.get_account(sim_app.alice)) == before
    assert len(queued()) == 1

    # The same state with a fresh code (the authorize URL visited again): the state is single use.
    again = requests.get(location, verify=sim_app.sim.ca_file, allow_redirects=False, timeout=10)
    second = get("oauth_callback", again.headers["Location"])
    assert second.status_code == 400 and b"already used" in second.get_body()
    assert len(queued()) == 1


def test_anonymous_start_writes_nothing_and_keeps_the_state_small(sim_app):
    """Issue 12 item 8: each anonymous start stored ~30 KB; now the flow travels sealed in the state."""
    from shared.storage import schema

    states = set()
    for _ in range(50):
        answer = get("oauth_start", START + "?login_hint=" + "a" * 300)
        assert answer.status_code == 302
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
        [state] = query["state"]
        assert len(state) < 1024 and "code_verifier" not in state
        states.add(state)
    assert len(states) == 50
    assert sim_app.repo._select(schema.OAUTH_FLOWS, None, {}) == []


def test_a_tampered_or_foreign_state_is_unknown(sim_app):
    _, callback = _authorize(sim_app)
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["state"][0]
    version, key_id, payload = state.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for forged in (f"{version}.{key_id}.{flipped}", f"{version}.0123456789ab.{payload}", "v1.x.y", "v1..", "é"):
        page = get("oauth_callback", callback.replace(urllib.parse.quote(state, safe=""), urllib.parse.quote(forged)))
        assert page.status_code == 400 and b"unknown or expired" in page.get_body()
    assert get("oauth_callback", callback).status_code == 200


def test_a_start_for_another_account_cannot_take_it_over(sim_app):
    """Issue 12 item 2: ?microsoft_user_id=<victim> made the callback store the signer's token under the
    victim's id (deleting the victim's rows). Now it only asks to re-consent that account: 403, nothing
    stored, when someone else signs in."""
    sim_app.sim.set_consent_user(sim_app.tenant, sim_app.bob)
    _, callback = _authorize(sim_app)
    assert get("oauth_callback", callback).status_code == 200  # Bob is linked
    bob_before = (sim_app.repo.get_user(sim_app.bob), sim_app.repo.get_account(sim_app.bob))
    queued_before = len(queued())

    sim_app.sim.set_consent_user(sim_app.tenant, sim_app.alice)  # the attacker signs in as herself
    _, callback = _authorize(sim_app, START + "?microsoft_user_id=" + sim_app.bob)
    page = get("oauth_callback", callback)
    assert page.status_code == 403 and b"not the account" in page.get_body()
    assert (sim_app.repo.get_user(sim_app.bob), sim_app.repo.get_account(sim_app.bob)) == bob_before
    assert sim_app.repo.get_user(sim_app.alice) is None and len(queued()) == queued_before

    _, callback = _authorize(sim_app, START + "?microsoft_user_id=crm-42")  # an id nobody has
    assert get("oauth_callback", callback).status_code == 403
    assert sim_app.repo.get_user("crm-42") is None


def test_one_mailbox_is_one_account_however_often_it_links(sim_app):
    """Signing in again re-links the same account id; an account linked under a customer id (POST
    /api/users) is re-consented under that id, and no second id is created for the mailbox."""
    from tests.accounts.conftest import refresh_token_for
    from tests.accounts.helpers import post_json

    for _ in range(2):
        _, callback = _authorize(sim_app)
        assert get("oauth_callback", callback).status_code == 200
    assert [a.microsoft_user_id for a in sim_app.repo.list_accounts()] == [sim_app.alice]

    linked = post_json("users", "http://127.0.0.1:7071/api/users", json.dumps({
        "type": "LINKED", "microsoft_user_id": "crm-42",
        "refresh_token": refresh_token_for(sim_app, sim_app.alice)}).encode())
    assert linked.status_code == 409 and sim_app.alice.encode() in linked.get_body()
    assert sim_app.repo.get_user("crm-42") is None

    sim_app.repo.delete_user(sim_app.alice)
    linked = post_json("users", "http://127.0.0.1:7071/api/users", json.dumps({
        "type": "LINKED", "microsoft_user_id": "crm-42",
        "refresh_token": refresh_token_for(sim_app, sim_app.alice)}).encode())
    assert linked.status_code == 200, linked.get_body()
    for start in (START, START + "?microsoft_user_id=crm-42"):
        _, callback = _authorize(sim_app, start)
        assert get("oauth_callback", callback).status_code == 200
    assert [a.microsoft_user_id for a in sim_app.repo.list_accounts()] == ["crm-42"]
    assert sim_app.repo.get_user(sim_app.alice) is None


@pytest.mark.parametrize("query", ["login_hint=" + "a" * 12_000, "microsoft_user_id=" + "x" * 300,
                                   "microsoft_user_id=a%00b", "login_hint=%0d%0aSet-Cookie:x"])
def test_absurd_start_parameters_are_400(sim_app, query):
    answer = get("oauth_start", START + "?" + query)
    assert answer.status_code == 400 and b"Traceback" not in answer.get_body()


@pytest.mark.parametrize("params", [{"login_hint": "\ud800"}, {"microsoft_user_id": "a\udfff"}])
def test_surrogates_in_start_parameters_are_400(sim_app, params):
    import azure.functions as func

    from tests.accounts.helpers import function

    answer = function("oauth_start")(func.HttpRequest("GET", START, headers={}, params=params, body=b""))
    assert answer.status_code == 400 and b"Traceback" not in answer.get_body()


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

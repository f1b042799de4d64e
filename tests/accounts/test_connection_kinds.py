"""The three connection kinds: authority + tenant, explicit authorize/token URLs, client credentials
(the last one in test_app_only.py)."""

from __future__ import annotations

import pytest
import requests

from shared.auth.msal_app import authority_of, delegated_scopes
from shared.config import ConfigError, load_settings
from tests.accounts.helpers import get


def test_explicit_authorize_and_token_urls_complete_a_signin(sim_app):
    base = f"{sim_app.sim.base_url}/{sim_app.tenant}/oauth2/v2.0"
    sim_app.configure(AUTHORITY_HOST="https://login.microsoftonline.com", TENANT="common",
                      AUTHORIZE_URL=f"{base}/authorize?prompt=consent", TOKEN_URL=f"{base}/token")
    start = get("oauth_start", "http://127.0.0.1:7071/api/oauth/start")
    location = start.headers["Location"]
    assert location.startswith(f"{base}/authorize?") and "prompt=consent" in location
    callback = requests.get(location, verify=sim_app.sim.ca_file, allow_redirects=False, timeout=10)
    assert get("oauth_callback", callback.headers["Location"]).status_code == 200
    assert sim_app.repo.get_account(sim_app.alice).status == "linked"


@pytest.mark.parametrize(("authorize", "token", "message"), [
    ("https://login.example.com/t/oauth2/v2.0/authorize", None, "together"),
    ("https://login.example.com/t/oauth2/v2.0/authorize", "https://login.example.com/t/token", "must end with"),
    ("https://login.example.com/x/oauth2/v2.0/authorize", "https://login.example.com/t/oauth2/v2.0/token",
     "same authority"),
])
def test_inconsistent_explicit_urls_are_refused(authorize, token, message):
    env = {"AUTHORIZE_URL": authorize, **({"TOKEN_URL": token} if token else {})}
    with pytest.raises(ConfigError, match=message):
        authority_of(load_settings(env))


def test_scopes_drop_reserved_ones_and_qualify_outside_the_global_cloud():
    settings = load_settings({"GRAPH_SCOPES": "User.Read offline_access openid Calendars.ReadWrite"})
    assert delegated_scopes(settings) == ["User.Read", "Calendars.ReadWrite"]
    us = load_settings({"GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0", "GRAPH_SCOPES": "User.Read"})
    assert delegated_scopes(us) == ["https://graph.microsoft.us/User.Read"]
    assert authority_of(load_settings({"TENANT": "contoso.onmicrosoft.com"}))[0] == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com")


def test_missing_client_secret_names_the_command(app_env):
    from shared.auth.msal_app import client_secret

    settings = app_env(CLIENT_ID="c")
    with pytest.raises(ConfigError, match="secrets set client-secret"):
        client_secret(settings)

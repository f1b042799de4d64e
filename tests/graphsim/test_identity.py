"""Acceptance 1: the real MSAL ConfidentialClientApplication against the simulated identity platform."""

from __future__ import annotations

import base64
import json

from tests.graphsim.helpers import app_token, bearer, consent, msal_app, setup, user_token


def test_openid_configuration_shape(graphsim, graphsim_session):
    s = setup(graphsim)
    cfg = graphsim_session.get(f"{graphsim.authority(s.tenant)}/v2.0/.well-known/openid-configuration").json()
    assert cfg["authorization_endpoint"] == f"{graphsim.authority(s.tenant)}/oauth2/v2.0/authorize"
    assert cfg["token_endpoint"] == f"{graphsim.authority(s.tenant)}/oauth2/v2.0/token"
    assert cfg["issuer"] == f"{graphsim.base_url}/{s.tenant}/v2.0"
    keys = graphsim_session.get(cfg["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA"
    bad = graphsim_session.get(f"{graphsim.base_url}/nope/v2.0/.well-known/openid-configuration")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_tenant"


def test_auth_code_pkce_refresh_and_client_credentials(graphsim, graphsim_session):
    s = setup(graphsim)
    result = user_token(graphsim, s, graphsim_session)
    claims = result["id_token_claims"]
    assert claims["aud"] == s.client_id and claims["tid"] == s.tenant and claims["oid"] == s.user
    assert claims["preferred_username"] == "adele@contoso.test" and claims["nonce"]
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": s.user, "utid": s.tenant}
    assert result["token_type"] == "Bearer" and result["expires_in"] > 0 and result["refresh_token"]
    me = graphsim_session.get(f"{graphsim.graph_url}/me", headers=bearer(result["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == s.user

    app = msal_app(graphsim, s, graphsim_session)
    rotated = app.acquire_token_by_refresh_token(result["refresh_token"], ["Calendars.ReadWrite"])
    assert rotated["refresh_token"] != result["refresh_token"]
    assert "access_token" in rotated

    app_only = app_token(graphsim, s, graphsim_session)
    r = graphsim_session.get(f"{graphsim.graph_url}/me", headers=bearer(app_only))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."
    r = graphsim_session.get(f"{graphsim.graph_url}/users/{s.user}/calendars", headers=bearer(app_only))
    assert r.status_code == 200 and r.json()["value"][0]["isDefaultCalendar"] is True


def test_acquire_token_silent_uses_cache_and_refresh(graphsim, graphsim_session):
    s = setup(graphsim)
    app = msal_app(graphsim, s, graphsim_session)
    flow, q = consent(app, graphsim_session)
    app.acquire_token_by_auth_code_flow(flow, q)
    account = app.get_accounts()[0]
    assert account["home_account_id"] == f"{s.user}.{s.tenant}"
    silent = app.acquire_token_silent(["Calendars.ReadWrite"], account=account, force_refresh=True)
    assert silent and "access_token" in silent


def test_code_replay_and_revoked_or_expired_refresh_tokens(graphsim, graphsim_session):
    s = setup(graphsim)
    app = msal_app(graphsim, s, graphsim_session)
    flow, q = consent(app, graphsim_session)
    first = app.acquire_token_by_auth_code_flow(dict(flow), q)
    assert "access_token" in first
    again = msal_app(graphsim, s, graphsim_session).acquire_token_by_auth_code_flow(dict(flow), q)
    assert again["error"] == "invalid_grant" and 54005 in again["error_codes"]

    graphsim.revoke_refresh_tokens(s.user)
    revoked = msal_app(graphsim, s, graphsim_session).acquire_token_by_refresh_token(
        first["refresh_token"], ["Calendars.ReadWrite"])
    assert revoked["error"] == "invalid_grant" and revoked["error_codes"] == [50173]
    assert revoked["error_description"].startswith("AADSTS50173:")

    fresh = user_token(graphsim, s, graphsim_session)
    graphsim.expire_refresh_tokens(s.user)
    expired = msal_app(graphsim, s, graphsim_session).acquire_token_by_refresh_token(
        fresh["refresh_token"], ["Calendars.ReadWrite"])
    assert expired["error"] == "invalid_grant" and "AADSTS700082" in expired["error_description"]


def test_pkce_verifier_checked_and_consent_denied(graphsim, graphsim_session):
    s = setup(graphsim)
    app = msal_app(graphsim, s, graphsim_session)
    flow, q = consent(app, graphsim_session)
    tampered = dict(flow, code_verifier="x" * 43)
    bad = app.acquire_token_by_auth_code_flow(tampered, q)
    assert bad["error"] == "invalid_grant" and bad["error_codes"] == [501481]

    graphsim.deny_consent(True)
    flow, q = consent(app, graphsim_session)
    assert q["error"] == "access_denied" and q["state"] == flow["state"]
    unregistered = graphsim_session.get(flow["auth_uri"].replace("localhost%3A7071", "evil.test"),
                                        allow_redirects=False)
    assert unregistered.status_code == 400 and "AADSTS50011" in unregistered.text


def test_client_errors(graphsim, graphsim_session):
    s = setup(graphsim)
    token_url = f"{graphsim.authority(s.tenant)}/oauth2/v2.0/token"
    r = graphsim_session.post(token_url, data={"grant_type": "client_credentials", "client_id": s.client_id,
                                               "client_secret": "wrong", "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and r.json()["error_codes"] == [7000215]
    r = graphsim_session.post(token_url, data={"grant_type": "client_credentials", "client_id": s.client_id,
                                               "client_secret": s.secret, "scope": "Calendars.Read"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = graphsim_session.post(token_url, data={"grant_type": "client_credentials", "client_id": s.client_id,
                                               "client_secret": s.secret,
                                               "scope": f"{graphsim.base_url}/.default"})
    assert r.status_code == 200 and r.json()["access_token"]


def test_graph_rejects_bad_tokens_and_missing_permissions(graphsim, graphsim_session):
    s = setup(graphsim, application_permissions=["User.Read.All"])
    for headers in ({}, bearer("garbage"), bearer("a.b.c")):
        r = graphsim_session.get(f"{graphsim.graph_url}/me/events", headers=headers)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "InvalidAuthenticationToken" and set(err["innerError"]) >= {"date", "request-id"}
    token = app_token(graphsim, s, graphsim_session)
    r = graphsim_session.get(f"{graphsim.graph_url}/users/{s.user}/events", headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    user = user_token(graphsim, s, graphsim_session)["access_token"]
    graphsim.expire_access_tokens(s.user)
    r = graphsim_session.get(f"{graphsim.graph_url}/me", headers=bearer(user))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]

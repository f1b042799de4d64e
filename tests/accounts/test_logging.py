"""Acceptance 4 (logs): a sign-in and a token refresh at DEBUG leak no secret or token."""

from __future__ import annotations

import json
import logging
import urllib.parse

import requests

from tests.accounts.conftest import refresh_token_for
from tests.accounts.helpers import get, post_json

LOGGERS = ("", "msal", "urllib3", "azure", "shared", "requests")


def test_signin_and_refresh_log_no_secrets(sim_app, caplog):
    from shared.auth.tokens import get_token_service
    from shared.crypto import get_token_cipher
    from shared.logging_setup import install_redaction

    install_redaction()
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)

    start = get("oauth_start", "http://127.0.0.1:7071/api/oauth/start")
    callback = requests.get(start.headers["Location"], verify=sim_app.sim.ca_file, allow_redirects=False,
                            timeout=10).headers["Location"]
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    assert get("oauth_callback", callback).status_code == 200
    service = get_token_service()
    first_access = service.access_token(sim_app.alice)
    stored_first = get_token_cipher().decrypt(sim_app.repo.get_user(sim_app.alice).encrypted_refresh_token,
                                              sim_app.alice)
    service.invalidate(sim_app.alice)
    second_access = service.access_token(sim_app.alice)
    stored_second = get_token_cipher().decrypt(sim_app.repo.get_user(sim_app.alice).encrypted_refresh_token,
                                               sim_app.alice)
    linked_rt = refresh_token_for(sim_app, sim_app.bob)
    post_json("users", "http://127.0.0.1:7071/api/users",
              json.dumps({"type": "LINKED", "microsoft_user_id": "b", "refresh_token": linked_rt}).encode())
    post_json("users", "http://127.0.0.1:7071/api/users",
              json.dumps({"type": "LINKED", "microsoft_user_id": "x", "refresh_token": "1.Abogus-rt"}).encode())

    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "msal" in {r.name.split(".")[0] for r in caplog.records}, "MSAL logged nothing: vacuous check"
    secrets_seen = [name for name, value in {
        "client secret": sim_app.secret, "authorization code": code, "access token": first_access,
        "refreshed access token": second_access, "refresh token": stored_first,
        "rotated refresh token": stored_second, "LINKED refresh token": linked_rt,
        "bogus refresh token": "1.Abogus-rt",
    }.items() if value in messages]
    assert secrets_seen == []

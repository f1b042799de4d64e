"""Acceptance 2: rotated refresh tokens are kept; a revoked grant stops only that user."""

from __future__ import annotations

import json
import threading

import pytest

from shared.auth import ReauthRequired
from tests.accounts.conftest import queued, refresh_token_for
from tests.accounts.helpers import post_json

USERS_URL = "http://127.0.0.1:7071/api/users"


def link(sim_app, user: str, caller_id: str) -> str:
    token = refresh_token_for(sim_app, user)
    body = json.dumps({"type": "LINKED", "microsoft_user_id": caller_id, "refresh_token": token}).encode()
    answer = post_json("users", USERS_URL, body)
    assert answer.status_code == 200, answer.get_body()
    return token


def stored_token(sim_app, caller_id: str) -> str:
    from shared.crypto import get_token_cipher

    row = sim_app.repo.get_user(caller_id)
    return get_token_cipher().decrypt(row.encrypted_refresh_token, caller_id)


def me(sim_app, token: str) -> dict:
    from shared.auth.graph_http import get_json

    return get_json(sim_app.settings, "/me", token)


def test_rotated_refresh_token_is_persisted(sim_app):
    from shared.auth.tokens import get_token_service

    link(sim_app, sim_app.alice, "a")
    first = stored_token(sim_app, "a")
    service = get_token_service()
    service.invalidate("a")
    token = service.access_token("a")
    assert me(sim_app, token)["id"] == sim_app.alice
    second = stored_token(sim_app, "a")
    assert second != first  # the simulator rotates on every refresh; we keep the new one
    assert service.access_token("a") == token  # cached: no second refresh
    assert service.refreshes == 2  # LINKED validation + one refresh


@pytest.mark.parametrize(("control", "code"), [("revoke_refresh_tokens", "AADSTS50173"),
                                               ("expire_refresh_tokens", "AADSTS700082")])
def test_dead_grant_marks_reauth_and_others_keep_working(sim_app, control, code):
    from shared.auth.tokens import get_token_service

    link(sim_app, sim_app.alice, "a")
    link(sim_app, sim_app.bob, "b")
    service = get_token_service()
    getattr(sim_app.sim, control)(sim_app.alice)
    service.invalidate("a")
    service.invalidate("b")

    with pytest.raises(ReauthRequired) as caught:
        service.access_token("a")
    assert code in caught.value.reason
    account = sim_app.repo.get_account("a")
    assert account.status == "reauth_required"
    assert code in account.status_reason
    assert account.status_changed_at is not None

    # No further calls to the identity platform for that user until it is linked again.
    refreshes = service.refreshes
    with pytest.raises(ReauthRequired):
        service.access_token("a")
    assert service.refreshes == refreshes

    # The other user keeps working.
    assert me(sim_app, service.access_token("b"))["id"] == sim_app.bob
    assert sim_app.repo.get_account("b").status == "linked"

    # REFRESHED with a new grant brings the first user back, with a full resync.
    fresh = refresh_token_for(sim_app, sim_app.alice)
    body = json.dumps({"type": "REFRESHED", "microsoft_user_id": "a", "refresh_token": fresh}).encode()
    assert post_json("users", USERS_URL, body).status_code == 200
    assert sim_app.repo.get_account("a").status == "linked"
    assert me(sim_app, service.access_token("a"))["id"] == sim_app.alice
    assert queued()[-1]["reason"] == "resync" and queued()[-1]["user_id"] == "a"


def test_one_refresh_per_user_under_concurrency(sim_app):
    from shared.auth.tokens import get_token_service

    link(sim_app, sim_app.alice, "a")
    service = get_token_service()
    service.invalidate("a")
    before = service.refreshes
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        tokens.append(service.access_token("a"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert service.refreshes - before == 1


def test_rejected_grant_retries_once_with_a_token_stored_meanwhile(sim_app, monkeypatch):
    """Another process (or a REFRESHED request) stored a new token while ours was refused."""
    from shared.auth import tokens

    link(sim_app, sim_app.alice, "a")
    service = tokens.get_token_service()
    service.invalidate("a")
    replacement = refresh_token_for(sim_app, sim_app.alice)
    real_redeem = service.redeem
    calls: list[str] = []

    def redeem(refresh_token: str):
        calls.append(refresh_token)
        if len(calls) == 1:
            service.store_refresh_token("a", replacement)  # the other writer
            raise tokens.GrantRejected("AADSTS50173: revoked")
        return real_redeem(refresh_token)

    monkeypatch.setattr(service, "redeem", redeem)
    assert service.access_token("a")
    assert calls[1] == replacement
    assert sim_app.repo.get_account("a").status == "linked"


def test_app_only_account_uses_the_app_token(sim_app):
    from shared.auth.tokens import get_token_service

    sim_app.repo.upsert_user(sim_app.bob, {"id": sim_app.bob})
    sim_app.repo.update_account(sim_app.bob, status="linked", mode="app_only", graph_user_id=sim_app.bob)
    service = get_token_service()
    assert service.access_token(sim_app.bob) == service.app_token()


def test_a_missing_setting_is_named_not_reported_as_an_unreachable_endpoint(sim_app):
    """Regression: with CLIENT_ID unset, a refresh said "token endpoint unreachable: ConfigError"."""
    from shared.auth.tokens import get_token_service
    from shared.config import ConfigError

    link(sim_app, sim_app.alice, "a")
    sim_app.configure(CLIENT_ID=None)
    with pytest.raises(ConfigError, match=r"^CLIENT_ID is not set"):
        get_token_service().access_token("a")

"""Acceptance 3: client credentials obtain an app token and read /users/{id}; onboarding."""

from __future__ import annotations

import pytest
import responses

from shared.config import ConfigError
from tests.accounts.conftest import queued


def test_app_token_reads_users(sim_app):
    from shared.auth.tokens import get_token_service
    from shared.graph.factory import app_client

    token = get_token_service().app_token()
    assert token == get_token_service().app_token()  # cached
    user = app_client().get(f"/users/{sim_app.bob}")
    assert user["id"] == sim_app.bob and user["displayName"] == "Bob"


def test_a_rejected_app_token_is_replaced_after_invalidation(sim_app):
    from shared.auth.tokens import get_token_service
    from shared.graph.factory import app_client

    service = get_token_service()
    first = service.app_token()
    service.invalidate_app()
    second = service.app_token()
    assert second != first  # MSAL's own cache must not hand back the rejected token
    sim_app.sim.expire_access_tokens()
    user = app_client().get(f"/users/{sim_app.bob}")  # 401 -> invalidate -> fresh token -> retry
    assert user["id"] == sim_app.bob


def test_app_token_needs_a_tenant(sim_app):
    from shared.auth.tokens import get_token_service

    sim_app.configure(TENANT="common")
    with pytest.raises(ConfigError, match="TENANT"):
        get_token_service().app_token()


def test_link_app_only_resolves_ids_and_principal_names(sim_app, capsys):
    from shared.cli import main

    sim_app.configure(APP_ONLY="true", APP_ONLY_USERS=f"alice@{sim_app.tenant}.test,{sim_app.bob},ghost@nowhere.test")
    assert main(["link-app-only"]) == 1  # one entry could not be resolved
    out = capsys.readouterr().out
    assert "linked: 2" in out and "ghost@nowhere.test" in out
    for user in (sim_app.alice, sim_app.bob):
        account = sim_app.repo.get_account(user)
        assert (account.mode, account.status, account.graph_user_id) == ("app_only", "linked", user)
        assert sim_app.repo.get_user(user).encrypted_refresh_token is None
    assert sorted(m["user_id"] for m in queued()) == sorted([sim_app.alice, sim_app.bob])

    # Re-running refreshes profiles but queues no second first-sync.
    assert main(["link-app-only"]) == 1
    assert len(queued()) == 2


def test_link_app_only_reads_group_members_page_by_page(sim_app):
    from shared.auth.app_only import link_app_only

    settings = sim_app.configure(APP_ONLY="true", APP_ONLY_GROUP="g-1")
    members = f"{sim_app.sim.graph_url}/groups/g-1/members"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_passthru(sim_app.sim.base_url + "/" + sim_app.tenant)  # the token endpoint stays real
        mock.get(members, match=[responses.matchers.query_param_matcher(
            {"$select": "id,displayName,userPrincipalName,mail"})], json={
            "value": [{"@odata.type": "#microsoft.graph.user", "id": "u-1", "displayName": "One"},
                      {"@odata.type": "#microsoft.graph.group", "id": "g-2"}],
            "@odata.nextLink": members + "?$skiptoken=2"})
        mock.get(members + "?$skiptoken=2", json={"value": [{"@odata.type": "#microsoft.graph.user", "id": "u-2"}]})
        report = link_app_only(settings)
    assert report.linked == ["u-1", "u-2"] and report.failed == []
    assert sim_app.repo.get_account("u-2").mode == "app_only"


def test_link_app_only_refuses_without_app_only(sim_app):
    from shared.auth.app_only import link_app_only

    with pytest.raises(ConfigError, match="APP_ONLY"):
        link_app_only(sim_app.settings)

"""The local secret store, the TTL cache, the flow store and the `secrets` commands."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import threading

import pytest

from shared.secrets import CachedSecretStore, SecretNameError, open_secret_store
from shared.secrets.local import LocalSecretStore
from shared.storage import schema


def test_files_are_private_and_writes_atomic(tmp_path):
    store = LocalSecretStore(tmp_path / "s")
    store.set("client-secret", "one")
    store.set("client-secret", "two")
    assert store.get("client-secret") == "two"
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "client-secret").st_mode) == 0o600
    assert os.listdir(tmp_path / "s") == ["client-secret"]  # no temporary files left
    assert store.names() == ["client-secret"] and store.names("token-") == []
    store.delete("client-secret")
    store.delete("client-secret")
    assert store.get("client-secret") is None and store.get("never") is None


@pytest.mark.parametrize("name", ["", "a/b", "../x", "a.b", "x" * 128, "a_b"])
def test_names_follow_key_vault_rules(tmp_path, name):
    with pytest.raises(SecretNameError):
        LocalSecretStore(tmp_path).set(name, "v")


def test_pop_has_exactly_one_winner(tmp_path):
    store = LocalSecretStore(tmp_path)
    store.set("oauth-flow-x", "flow")
    results: list[str | None] = []
    barrier = threading.Barrier(16)

    def take() -> None:
        barrier.wait()
        results.append(store.pop("oauth-flow-x"))

    threads = [threading.Thread(target=take) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("flow") == 1 and results.count(None) == 15


def test_cache_serves_until_the_ttl(tmp_path):
    now = [0.0]
    backend = LocalSecretStore(tmp_path)
    cached = CachedSecretStore(backend, ttl_seconds=300, clock=lambda: now[0])
    cached.set("k", "v1")
    backend.set("k", "v2")  # changed by another process
    assert cached.get("k") == "v1"
    now[0] = 301
    assert cached.get("k") == "v2"
    assert cached.get("missing") is None
    backend.set("missing", "now-here")
    assert cached.get("missing") == "now-here"  # absent values are never cached


def test_flows_travel_sealed_in_the_state_and_nothing_is_stored_at_start(app_env, tmp_path):
    from shared.auth.flow_store import FlowStore, get_flow_store
    from shared.storage.sqlite import SqliteRepository

    settings = app_env()
    flows = get_flow_store(settings)
    msal_flow = {"code_verifier": "pkce-verifier-value", "nonce": "nonce-value", "scope": ["User.Read", "openid"]}
    state = flows.seal(msal_flow, reconsent_user_id="u")
    assert "pkce-verifier-value" not in state and "nonce-value" not in state  # sealed
    assert open_secret_store(settings).backend.names("oauth") == []  # no secret per sign-in
    opened = flows.open(state, "https://app/cb")
    assert opened.reconsent_user_id == "u"
    assert opened.msal_flow == {"state": state, "redirect_uri": "https://app/cb", "scope": ["User.Read", "openid"],
                                "code_verifier": "pkce-verifier-value", "nonce": "nonce-value",
                                "claims_challenge": None}
    assert flows.open("", "x") is None and flows.open("x" * 3000, "x") is None

    refresh_token = flows.cipher.encrypt('{"v":"a","n":"b","s":[],"e":9999999999}', "someone")
    assert flows.open(refresh_token, "x") is None  # a ciphertext made for another purpose never opens
    version, key_id, payload = state.split(".")
    assert flows.open(f"{version}.{key_id}.{payload[:-4]}AAAA", "x") is None  # tampered
    expired = FlowStore(flows.repo, flows.cipher, lifetime=-1).seal(msal_flow)
    assert flows.open(expired, "x") is None
    old_key_state = state
    flows.cipher.create_key()  # rotation: states sealed with the previous key are refused
    assert flows.open(old_key_state, "x") is None

    repo = SqliteRepository(tmp_path / "flows.db")
    repo.ensure_schema()
    store = FlowStore(repo, flows.cipher)
    fresh = store.seal(msal_flow)
    flow = store.open(fresh, "x")
    assert store.claim(fresh, flow) is True and store.claim(fresh, flow) is False
    stored = repo._select(schema.OAUTH_FLOWS, None, {})
    assert len(stored) == 1 and fresh not in json.dumps(stored, default=str)  # only the state's hash
    repo.close()


def test_secrets_commands_never_echo_values(app_env, monkeypatch, capsys):
    from shared.cli import main

    app_env()
    monkeypatch.setattr(sys, "stdin", io.StringIO("hunter2-secret\n"))
    assert main(["secrets", "set", "client-secret"]) == 0
    assert main(["secrets", "list"]) == 0
    out = capsys.readouterr().out
    assert "client-secret" in out and "hunter2" not in out
    assert open_secret_store().get("client-secret") == "hunter2-secret"
    assert main(["secrets", "set", "bad/name"]) == 1
    assert main(["secrets", "delete", "client-secret"]) == 0
    assert open_secret_store().get("client-secret") is None


def test_triggers_module_imports_nothing_heavy():
    import subprocess

    code = ("import sys, shared.triggers.accounts, function_app; "
            "heavy = [m for m in ('msal', 'cryptography', 'psycopg', 'requests', 'azure.keyvault', 'azure.identity', "
            "'azure.data.tables', 'azure.storage.queue', 'azure.storage.blob', 'azure.core', "
            "'shared.auth.tokens', 'shared.crypto') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert result.stdout.strip() == "[]"

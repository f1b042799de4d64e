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


def test_flow_store_keeps_flows_in_the_repository_not_the_secret_store(app_env, tmp_path):
    from shared.auth.flow_store import FlowStore, flow_key, get_flow_store
    from shared.storage.sqlite import SqliteRepository

    settings = app_env()
    flows = get_flow_store(settings)
    flows.put("state-1", {"state": "state-1"}, microsoft_user_id="u")
    assert open_secret_store(settings).backend.names("oauth-flow") == []  # no secret per sign-in
    assert "state-1" not in repr(flows)
    record = flows.take("state-1")
    assert record == {"flow": {"state": "state-1"}, "microsoft_user_id": "u"}
    assert flows.take("state-1") is None and flows.take("") is None and flows.take("x" * 600) is None

    repo = SqliteRepository(tmp_path / "flows.db")
    repo.ensure_schema()
    cipher = flows.cipher
    short = FlowStore(repo, cipher, lifetime=-1)  # already expired when stored
    short.put("state-2", {})
    assert short.take("state-2") is None
    FlowStore(repo, cipher).put("state-3", {"code_verifier": "pkce-verifier-value"})
    stored = repo._select(schema.OAUTH_FLOWS, None, {})
    assert [r["flow_key"] for r in stored] == [flow_key("state-3")]  # the state is hashed; state-2 swept
    assert "pkce-verifier-value" not in json.dumps(stored, default=str)  # sealed at rest
    assert FlowStore(repo, cipher).take("state-3") == {"flow": {"code_verifier": "pkce-verifier-value"}}
    repo.close()


def test_a_tampered_flow_is_treated_as_unknown(app_env, tmp_path):
    from shared.auth.flow_store import FlowStore, flow_key, get_flow_store
    from shared.storage.sqlite import SqliteRepository

    cipher = get_flow_store(app_env()).cipher
    repo = SqliteRepository(tmp_path / "flows.db")
    repo.ensure_schema()
    FlowStore(repo, cipher).put("state-a", {"code_verifier": "a"})
    FlowStore(repo, cipher).put("state-b", {"code_verifier": "b"})
    sealed_b = repo.take_flow(flow_key("state-b"))
    repo.take_flow(flow_key("state-a"))
    from datetime import UTC, datetime, timedelta

    # state-b's sealed record moved under state-a's key: the binding to the key refuses it.
    repo.put_flow(flow_key("state-a"), sealed_b, datetime.now(UTC) + timedelta(minutes=5))
    assert FlowStore(repo, cipher).take("state-a") is None
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

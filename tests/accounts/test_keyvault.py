"""Acceptance 4: the Key Vault store through the real azure-keyvault-secrets SDK, no secrets in logs."""

from __future__ import annotations

import logging

import pytest

from shared.secrets import CachedSecretStore
from shared.secrets.keyvault import KeyVaultSecretStore
from tests.fixtures.keyvault import FakeCredential


@pytest.fixture
def store(keyvault) -> KeyVaultSecretStore:
    return KeyVaultSecretStore(keyvault.url, FakeCredential(keyvault.token),
                               verify_challenge_resource=False, connection_verify=keyvault.cert_file)


def test_set_get_list_delete_through_the_sdk_with_challenge(keyvault, store):
    assert store.get("client-secret") is None
    assert keyvault.challenges == 1 and keyvault.requests[0][2] is False  # first request: no token
    store.set("client-secret", "s3cr3t~value")
    store.set("token-key-current", "abcdefabcdef")
    assert store.get("client-secret") == "s3cr3t~value"
    assert store.names() == ["client-secret", "token-key-current"]
    assert store.names("token-key-") == ["token-key-current"]
    store.delete("client-secret")
    store.delete("client-secret")  # missing: not an error
    assert store.get("client-secret") is None
    assert "client-secret" in keyvault.deleted
    assert store.pop("token-key-current") == "abcdefabcdef" and store.get("token-key-current") is None
    assert store._credential.scopes[0] == ("https://vault.azure.net/.default",)
    assert keyvault.challenges == 1  # the token is reused after the challenge


def test_cache_in_front_of_the_vault(keyvault, store):
    cached = CachedSecretStore(store, ttl_seconds=300)
    cached.set("client-secret", "v1")
    reads = len(keyvault.requests)
    assert cached.get("client-secret") == "v1" and cached.get("client-secret") == "v1"
    assert len(keyvault.requests) == reads  # served from memory
    assert cached.get("client-secret", fresh=True) == "v1"
    assert len(keyvault.requests) == reads + 1


def test_token_cipher_keys_live_in_the_vault(keyvault, store):
    from shared.crypto import TokenCipher

    cipher = TokenCipher(store)
    stored = cipher.encrypt("1.A-refresh", "u")
    assert sorted(keyvault.secrets) == sorted(["token-key-current", f"token-key-{stored.split('.')[1]}"])
    assert TokenCipher(store).decrypt(stored, "u") == "1.A-refresh"


def test_open_secret_store_picks_key_vault_when_configured(app_env):
    from shared.secrets import open_secret_store

    settings = app_env(KEY_VAULT_URL="https://myvault.vault.azure.net")
    store = open_secret_store(settings)
    assert isinstance(store.backend, KeyVaultSecretStore)
    assert store.backend.vault_url == "https://myvault.vault.azure.net"
    assert store.ttl == settings.secret_cache_seconds


def test_no_secret_or_token_in_logs(keyvault, store, caplog):
    """Everything at DEBUG, the SDKs' loggers included: the values never show up."""
    from shared.logging_setup import install_redaction

    install_redaction()
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3", "msal", "shared"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    verbose = KeyVaultSecretStore(keyvault.url, FakeCredential(keyvault.token), verify_challenge_resource=False,
                                  connection_verify=keyvault.cert_file, logging_enable=True)
    verbose.set("client-secret", "very-secret-client-value")
    assert verbose.get("client-secret") == "very-secret-client-value"
    from shared.crypto import TokenCipher

    TokenCipher(verbose).encrypt("1.A-refresh-token-value", "u")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "the SDK logged nothing: the check would be vacuous"
    for value in ("very-secret-client-value", keyvault.token, "1.A-refresh-token-value"):
        assert value not in text

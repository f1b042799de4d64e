"""Acceptance 5 (cipher part): AES-256-GCM ciphertexts, tamper detection, key rotation."""

from __future__ import annotations

import pytest

from shared.crypto import TokenCipher, TokenDecryptError, key_id_of
from shared.crypto.rotation import retire_old_keys, rotate_key
from shared.secrets.local import LocalSecretStore
from tests.accounts.fakes import FakeRepository


@pytest.fixture
def cipher(tmp_path) -> TokenCipher:
    return TokenCipher(LocalSecretStore(tmp_path / "secrets"))


def test_round_trip_with_random_nonce_and_key_created_on_first_use(cipher):
    assert cipher.store.names() == []
    one = cipher.encrypt("1.A-refresh", "user-1")
    two = cipher.encrypt("1.A-refresh", "user-1")
    assert one != two  # random nonce: equal tokens never give equal ciphertexts
    assert one.startswith("v1.") and "1.A-refresh" not in one
    assert cipher.decrypt(one, "user-1") == cipher.decrypt(two, "user-1") == "1.A-refresh"
    key_id = key_id_of(one)
    assert sorted(cipher.store.names()) == sorted([f"token-key-{key_id}", "token-key-current"])
    assert cipher.store.get("token-key-current") == key_id


def _flip(text: str, index: int) -> str:
    index %= len(text)
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1:]


@pytest.mark.parametrize("where", [-1, -20, 20])
def test_tampering_raises_a_clear_error(cipher, where):
    stored = cipher.encrypt("1.A-refresh", "user-1")
    with pytest.raises(TokenDecryptError, match=r"failed authentication|base64|truncated"):
        cipher.decrypt(_flip(stored, where), "user-1")


def test_a_token_cannot_be_moved_to_another_user(cipher):
    stored = cipher.encrypt("1.A-refresh", "user-1")
    with pytest.raises(TokenDecryptError, match="another user"):
        cipher.decrypt(stored, "user-2")


@pytest.mark.parametrize("bad", ["plaintext-token", "v2.abcdefabcdef.xxxx", "v1.nothex.xxxx", "v1.abcdefabcdef.AA"])
def test_malformed_ciphertexts(cipher, bad):
    with pytest.raises(TokenDecryptError):
        cipher.decrypt(bad, "user-1")


def test_unknown_key_is_a_clear_error(cipher, tmp_path):
    stored = cipher.encrypt("1.A-refresh", "user-1")
    other = TokenCipher(LocalSecretStore(tmp_path / "elsewhere"))
    with pytest.raises(TokenDecryptError, match="not in the secret store"):
        other.decrypt(stored, "user-1")


def test_rotation_reencrypts_every_row_and_old_keys_become_unneeded(cipher):
    repo = FakeRepository()
    for n in range(25):
        repo.upsert_user(f"u{n}", {}, encrypted_refresh_token=cipher.encrypt(f"rt-{n}", f"u{n}"))
    repo.upsert_user("no-token", {})
    old_key = cipher.current_key_id()
    old_rows = {u.microsoft_user_id: u.encrypted_refresh_token for u in repo.list_users()}
    seen: list[tuple[int, int]] = []

    report = rotate_key(repo, cipher, progress=lambda done, total: seen.append((done, total)))
    assert report.key_id != old_key and cipher.current_key_id() == report.key_id
    assert (report.total, report.reencrypted, report.without_token, report.failed) == (26, 25, 1, [])
    assert seen[-1] == (26, 26)
    assert report.old_keys == [old_key] and report.referenced_old == {}
    for n in range(25):
        stored = repo.get_user(f"u{n}").encrypted_refresh_token
        assert key_id_of(stored) == report.key_id
        assert cipher.decrypt(stored, f"u{n}") == f"rt-{n}"
    # Until retired, the old key still decrypts old ciphertexts (the app keeps running).
    assert cipher.decrypt(old_rows["u0"], "u0") == "rt-0"

    retire_old_keys(repo, cipher, report)
    assert report.retired == [old_key]
    assert cipher.key_ids() == [report.key_id]
    fresh = TokenCipher(cipher.store)  # a new process: old ciphertexts are no longer readable...
    with pytest.raises(TokenDecryptError):
        fresh.decrypt(old_rows["u0"], "u0")
    assert fresh.decrypt(repo.get_user("u0").encrypted_refresh_token, "u0") == "rt-0"  # ...and not needed


def test_rotation_does_not_overwrite_a_token_refreshed_meanwhile(cipher):
    repo = FakeRepository()
    repo.upsert_user("u", {}, encrypted_refresh_token=cipher.encrypt("old", "u"))
    real_get = repo.get_user
    calls = {"n": 0}

    def racing_get(user_id):
        calls["n"] += 1
        if calls["n"] == 2:  # between our read and our write, a refresh stores a rotated token
            repo.set_refresh_token(user_id, cipher.encrypt("rotated", user_id))
        return real_get(user_id)

    repo.get_user = racing_get
    report = rotate_key(repo, cipher)
    assert cipher.decrypt(repo.get_user("u").encrypted_refresh_token, "u") == "rotated"
    assert key_id_of(repo.get_user("u").encrypted_refresh_token) == report.key_id


def test_retire_keeps_keys_still_in_use_by_unreadable_rows(cipher):
    repo = FakeRepository()
    good = cipher.encrypt("rt", "u1")
    repo.upsert_user("u1", {}, encrypted_refresh_token=good)
    repo.upsert_user("u2", {}, encrypted_refresh_token=_flip(cipher.encrypt("rt", "u2"), -1))
    old_key = key_id_of(good)
    report = rotate_key(repo, cipher)
    assert [user for user, _ in report.failed] == ["u2"]
    assert report.referenced_old == {old_key: 1}
    retire_old_keys(repo, cipher, report)
    assert report.retired == [] and old_key in cipher.key_ids()

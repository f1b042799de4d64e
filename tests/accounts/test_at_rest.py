"""Acceptance 5 (storage part): raw rows never hold a refresh token in plaintext, in any backend;
tampering is detected; `rotate-key` re-encrypts every row and retires the old key."""

from __future__ import annotations

import json
import pathlib

import pytest

from shared.auth import ReauthRequired
from tests.accounts.conftest import refresh_token_for
from tests.accounts.helpers import post_json

USERS = "microsoft_calendar_user_v1"


def link_two(sim_app) -> dict[str, str]:
    tokens = {}
    for caller, user in (("a", sim_app.alice), ("b", sim_app.bob)):
        tokens[caller] = refresh_token_for(sim_app, user)
        body = json.dumps({"type": "LINKED", "microsoft_user_id": caller, "refresh_token": tokens[caller]}).encode()
        assert post_json("users", "http://127.0.0.1:7071/api/users", body).status_code == 200
    # The tokens actually stored are the rotated ones from validation; collect both kinds.
    from shared.crypto import get_token_cipher

    for caller in ("a", "b"):
        row = sim_app.repo.get_user(caller)
        tokens[caller + "-stored"] = get_token_cipher().decrypt(row.encrypted_refresh_token, caller)
    return tokens


def assert_absent(blob: str, tokens: dict[str, str]) -> None:
    leaked = [name for name, value in tokens.items() if value in blob]
    assert leaked == []


def test_sqlite_rows_and_file_hold_no_plaintext_token(sim_app):
    import sqlite3

    tokens = link_two(sim_app)
    path = pathlib.Path(sim_app.settings.sqlite_path)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT microsoft_user_id, encrypted_refresh_token, data FROM {USERS}").fetchall()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        everything = [str(r) for t in tables for r in conn.execute(f'SELECT * FROM "{t}"')]
    assert {r[0] for r in rows} == {"a", "b"}
    assert all(r[1].startswith("v1.") for r in rows)
    assert_absent("\n".join(everything), tokens)
    raw_files = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert_absent(raw_files.decode("latin-1"), tokens)
    secrets_dir = pathlib.Path(sim_app.settings.local_secrets_dir)
    assert_absent("".join(p.read_text() for p in secrets_dir.iterdir() if p.is_file()), tokens)


def test_postgres_rows_hold_no_plaintext_token(sim_app, pg_dsn):
    import psycopg

    sim_app.configure(DATABASE_BACKEND="postgres", PG_DSN=pg_dsn)
    tokens = link_two(sim_app)
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f"SELECT microsoft_user_id, encrypted_refresh_token, data::text FROM {USERS}").fetchall()
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        everything = [str(r) for t in tables for r in conn.execute(f'SELECT * FROM "{t}"')]
    assert {r[0] for r in rows} == {"a", "b"} and all(r[1].startswith("v1.") for r in rows)
    assert_absent("\n".join(everything), tokens)


@pytest.mark.azurite
def test_table_storage_entities_hold_no_plaintext_token(sim_app, azurite):
    from azure.data.tables import TableServiceClient

    sim_app.configure(DATABASE_BACKEND="tables", TABLES_CONNECTION_STRING=azurite, TABLE_PREFIX="acct")
    tokens = link_two(sim_app)
    service = TableServiceClient.from_connection_string(azurite)
    dump = []
    for table in service.list_tables():
        if table.name.startswith("acct"):
            dump.extend(str(dict(e)) for e in service.get_table_client(table.name).list_entities())
    assert any("v1." in line for line in dump)
    assert_absent("\n".join(dump), tokens)


def test_tampered_row_is_a_clear_error_and_stops_only_that_user(sim_app):
    import sqlite3

    from shared.auth.tokens import get_token_service

    link_two(sim_app)
    with sqlite3.connect(sim_app.settings.sqlite_path) as conn:
        (stored,) = conn.execute(f"SELECT encrypted_refresh_token FROM {USERS} WHERE microsoft_user_id='a'").fetchone()
        tampered = stored[:-3] + ("AAA" if stored[-3:] != "AAA" else "BBB")
        conn.execute(f"UPDATE {USERS} SET encrypted_refresh_token=? WHERE microsoft_user_id='a'", (tampered,))
    service = get_token_service()
    service.invalidate("a")
    with pytest.raises(ReauthRequired, match="failed authentication"):
        service.access_token("a")
    assert "unreadable" in sim_app.repo.get_account("a").status_reason
    service.invalidate("b")
    assert service.access_token("b")


def test_rotate_key_command_reencrypts_all_rows_and_retires_the_old_key(sim_app, capsys):
    from shared.auth.tokens import get_token_service
    from shared.cli import main
    from shared.crypto import get_token_cipher, key_id_of

    sim_app.configure(SECRET_CACHE_SECONDS="0")
    link_two(sim_app)
    old_key = key_id_of(sim_app.repo.get_user("a").encrypted_refresh_token)
    before = {u: sim_app.repo.get_user(u).encrypted_refresh_token for u in ("a", "b")}

    assert main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert "re-encrypted: 2" in out and f"old keys no longer needed by any row: {old_key}" in out
    new_key = get_token_cipher().current_key_id()
    assert new_key != old_key
    assert {key_id_of(sim_app.repo.get_user(u).encrypted_refresh_token) for u in ("a", "b")} == {new_key}
    # The app keeps working during and after the rotation.
    service = get_token_service()
    service.invalidate("a")
    assert service.access_token("a")

    assert main(["rotate-key", "--retire-only"]) == 0
    assert f"deleted old keys: {old_key}" in capsys.readouterr().out
    assert get_token_cipher().key_ids() == [new_key]
    from shared.crypto import TokenCipher, TokenDecryptError

    with pytest.raises(TokenDecryptError, match="not in the secret store"):
        TokenCipher(get_token_cipher().store.backend).decrypt(before["b"], "b")
    service.invalidate("b")
    assert service.access_token("b")

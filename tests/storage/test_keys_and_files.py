"""Issue 12, item 11: Table Storage key limits refused cleanly, tamper logged, private files."""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid

import pytest

from shared.storage.tablekeys import KeyTooLong, encode_key
from tests.storage.conftest import make_repository


def test_table_storage_keys_up_to_512_units_work_and_longer_are_refused_before_the_service(request, tmp_path):
    repo = make_repository("tables", request, tmp_path)
    repo.ensure_schema()
    try:
        longest = "u" * 512
        repo.upsert_user(longest, {"id": "g"})
        assert repo.get_user(longest).data == {"id": "g"}
        for too_long in ("u" * 513, "/" * 200):  # 200 slashes are 600 characters once escaped
            with pytest.raises(KeyTooLong):
                repo.get_user(too_long)
            with pytest.raises(KeyTooLong):
                repo.upsert_user(too_long, {"id": "g"})
    finally:
        repo.close()
    with pytest.raises(KeyTooLong):
        encode_key("😀" * 257)  # 514 UTF-16 units


def test_post_users_with_an_over_long_id_on_table_storage_answers_400(app_env, azurite):
    from shared.auth import client_requests

    settings = app_env(DATABASE_BACKEND="tables", TABLES_CONNECTION_STRING=azurite,
                       TABLE_PREFIX=f"k{uuid.uuid4().hex[:10]}")
    body = json.dumps({"type": "RESYNC", "microsoft_user_id": "x" * 600}).encode()
    reply = client_requests.handle(settings, body)
    assert reply.status == 400 and "too long" in reply.body["error"]


def test_a_detected_tamper_is_logged_without_secrets(tmp_path, caplog):
    from shared.crypto import TokenCipher, TokenDecryptError
    from shared.secrets.local import LocalSecretStore

    cipher = TokenCipher(LocalSecretStore(tmp_path / "secrets"))
    stored = cipher.encrypt("1.A-secret-refresh", "user-1")
    tampered = stored[:-2] + ("AA" if stored[-2:] != "AA" else "BB")
    with caplog.at_level(logging.WARNING, logger="shared.crypto"), pytest.raises(TokenDecryptError):
        cipher.decrypt(tampered, "user-1")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECURITY" in logged and "user-1" in logged
    assert stored.split(".")[2][:16] not in logged and "secret-refresh" not in logged
    key = cipher.store.get(f"token-key-{stored.split('.')[1]}")
    assert key and key not in logged


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sqlite_database_and_queue_files_are_private(tmp_path):
    from shared.queues.local import LocalQueue
    from shared.storage.sqlite import SqliteRepository

    old = os.umask(0o022)
    try:
        repo = SqliteRepository(tmp_path / "data" / "calendar.db")
        repo.ensure_schema()
        repo.upsert_user("u", {"id": "u"})
        queue = LocalQueue("calendar-sync", tmp_path / "queues" / "queue.db")
        queue.send("{}")
    finally:
        os.umask(old)
    for path in (tmp_path / "data" / "calendar.db", tmp_path / "data" / "calendar.db-wal",
                 tmp_path / "queues" / "queue.db", tmp_path / "queues" / "queue.db-wal"):
        assert _mode(path) == 0o600, path
    assert _mode(tmp_path / "data") == 0o700 and _mode(tmp_path / "queues") == 0o700
    repo.close()


def test_a_world_readable_database_left_by_an_older_version_is_tightened(tmp_path):
    from shared.storage.sqlite import SqliteRepository

    path = tmp_path / "calendar.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SqliteRepository(path).close()
    assert _mode(path) == 0o600

"""An in-memory repository with the user-row methods key rotation needs (cipher unit tests only)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

KEEP = object()


@dataclasses.dataclass(frozen=True)
class UserRow:
    microsoft_user_id: str
    data: dict[str, Any]
    encrypted_refresh_token: str | None = None


class FakeRepository:
    def __init__(self) -> None:
        self.users: dict[str, UserRow] = {}
        self.lock = threading.Lock()

    def upsert_user(self, user_id: str, data: dict[str, Any], *, encrypted_refresh_token: Any = KEEP) -> None:
        with self.lock:
            old = self.users.get(user_id) or UserRow(user_id, {})
            token = old.encrypted_refresh_token if encrypted_refresh_token is KEEP else encrypted_refresh_token
            self.users[user_id] = dataclasses.replace(old, data=dict(data), encrypted_refresh_token=token)

    def get_user(self, user_id: str) -> UserRow | None:
        return self.users.get(user_id)

    def list_users(self) -> list[UserRow]:
        return list(self.users.values())

    def set_refresh_token(self, user_id: str, encrypted: str | None) -> None:
        with self.lock:
            old = self.users.get(user_id) or UserRow(user_id, {})
            self.users[user_id] = dataclasses.replace(old, encrypted_refresh_token=encrypted)

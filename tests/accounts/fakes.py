"""An in-memory repository with the storage interface's account methods (unit tests only)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

KEEP = object()


@dataclasses.dataclass(frozen=True)
class UserRow:
    microsoft_user_id: str
    data: dict[str, Any]
    encrypted_refresh_token: str | None = None
    events_subscription_id: str | None = None
    events_subscription_expiration: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class AccountState:
    microsoft_user_id: str
    status: str | None = None
    status_reason: str | None = None
    status_changed_at: dt.datetime | None = None
    graph_user_id: str | None = None
    mode: str | None = None
    extra: dict[str, Any] | None = None


class FakeRepository:
    def __init__(self) -> None:
        self.users: dict[str, UserRow] = {}
        self.accounts: dict[str, AccountState] = {}
        self.flows: dict[str, tuple[dict[str, Any], dt.datetime]] = {}
        self.lock = threading.Lock()
        self.writes = 0

    def ensure_schema(self) -> None:
        pass

    def upsert_user(self, user_id: str, data: dict[str, Any], *, encrypted_refresh_token: Any = KEEP) -> None:
        with self.lock:
            old = self.users.get(user_id) or UserRow(user_id, {})
            token = old.encrypted_refresh_token if encrypted_refresh_token is KEEP else encrypted_refresh_token
            self.users[user_id] = dataclasses.replace(old, data=dict(data), encrypted_refresh_token=token)
            self.writes += 1

    def get_user(self, user_id: str) -> UserRow | None:
        return self.users.get(user_id)

    def list_users(self) -> list[UserRow]:
        return list(self.users.values())

    def set_refresh_token(self, user_id: str, encrypted: str | None) -> None:
        with self.lock:
            old = self.users.get(user_id) or UserRow(user_id, {})
            self.users[user_id] = dataclasses.replace(old, encrypted_refresh_token=encrypted)
            self.writes += 1

    def set_events_subscription(self, user_id: str, sub_id: str | None, expiration: Any) -> None:
        with self.lock:
            old = self.users.get(user_id) or UserRow(user_id, {})
            self.users[user_id] = dataclasses.replace(old, events_subscription_id=sub_id,
                                                      events_subscription_expiration=expiration)

    def delete_user(self, user_id: str) -> None:
        with self.lock:
            self.users.pop(user_id, None)
            self.accounts.pop(user_id, None)
            self.writes += 1

    def get_account(self, user_id: str) -> AccountState | None:
        return self.accounts.get(user_id)

    def update_account(self, user_id: str, **changes: Any) -> AccountState:
        with self.lock:
            old = self.accounts.get(user_id) or AccountState(user_id)
            new = dataclasses.replace(old, **changes)
            self.accounts[user_id] = new
            self.writes += 1
            return new

    def list_accounts(self) -> list[AccountState]:
        return list(self.accounts.values())

    def put_flow(self, key: str, flow: dict[str, Any], expires_at: dt.datetime) -> None:
        with self.lock:
            self.flows[key] = (flow, expires_at)

    def take_flow(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            flow, expires_at = self.flows.pop(key, (None, None))
        return flow if expires_at is not None and expires_at > dt.datetime.now(dt.UTC) else None

    def close(self) -> None:
        pass

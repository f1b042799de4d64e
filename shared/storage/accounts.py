"""Users, account state and calendar subscription rows: who is linked and how they are listened to."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Unpack

from shared.storage.engine import RepositoryCore, TxT
from shared.storage.rows import (
    incoming,
    utc,
    utcnow,
)
from shared.storage.schema import (
    ACCOUNTS,
    CALENDAR_SUBSCRIPTIONS,
    CALENDARS,
    CURSORS,
    EVENTS,
    OUTBOX,
    SEEN,
    USERS,
)
from shared.storage.types import (
    KEEP,
    AccountChanges,
    AccountState,
    CalendarSubscription,
    Keep,
    SubscriptionChanges,
    UserRow,
)

log = logging.getLogger("shared.storage")


ACCOUNT_STATUSES = ("linked", "reauth_required", "unlinked")
ACCOUNT_MODES = ("delegated", "app_only")


class AccountStore(RepositoryCore[TxT]):
    """The user rows (profile, encrypted token), the account state machine and per-calendar subscriptions."""

    # ------------------------------------------------------------------ users
    def upsert_user(self, user_id: str, data: dict[str, Any], *,
                    encrypted_refresh_token: str | Keep | None = KEEP) -> None:
        managed = {} if encrypted_refresh_token is KEEP else {"encrypted_refresh_token": encrypted_refresh_token}
        rows = self._incoming(USERS, [data], {"microsoft_user_id": user_id}, managed)
        # The profile (Graph's /me or /users/{id}) is published like calendars and events; the managed
        # columns set elsewhere (token, subscription) are not row changes consumers care about.
        self._atomic(user_id, lambda tx: self._record(tx, user_id, self._upsert(tx, USERS, user_id, rows)))

    def get_user(self, user_id: str) -> UserRow | None:
        row = self._get(USERS, user_id, {"microsoft_user_id": user_id})
        return UserRow(**row) if row else None

    def list_users(self) -> list[UserRow]:
        return [UserRow(**r) for r in self._select(USERS, None, {})]

    def _set_user_columns(self, user_id: str, values: dict[str, Any]) -> None:
        def unit(tx: TxT) -> None:
            current = self._get(USERS, user_id, {"microsoft_user_id": user_id}, tx)
            data = current["data"] if current else {}
            self._upsert(tx, USERS, user_id, [incoming(USERS, data, {"microsoft_user_id": user_id}, values)])

        self._atomic(user_id, unit)

    def set_refresh_token(self, user_id: str, encrypted: str | None) -> None:
        """Store the encrypted refresh token (creates the user row with empty data if missing)."""
        self._set_user_columns(user_id, {"encrypted_refresh_token": encrypted})

    def set_events_subscription(self, user_id: str, subscription_id: str | None,
                                expiration: datetime | None) -> None:
        self._set_user_columns(user_id, {"events_subscription_id": subscription_id,
                                         "events_subscription_expiration": utc(expiration)})

    def delete_user(self, user_id: str) -> None:
        """The user's rows in all three tables, the account state, cursors and round markers.

        The outbox sequence stays: a user linked again continues it, so the feed's `sequence`
        (what consumers order a row's changes by) never goes backwards.
        """
        def unit(tx: TxT) -> None:
            for spec in (OUTBOX, SEEN, CURSORS, EVENTS, CALENDARS, CALENDAR_SUBSCRIPTIONS, ACCOUNTS, USERS):
                self._delete(tx, spec, user_id, {"microsoft_user_id": user_id})

        self._atomic(user_id, unit)

    # ------------------------------------------------------------------ account state
    def get_account(self, user_id: str) -> AccountState | None:
        row = self._get(ACCOUNTS, user_id, {"microsoft_user_id": user_id})
        return AccountState(**row) if row else None

    def update_account(self, user_id: str, **changes: Unpack[AccountChanges]) -> AccountState:
        """Change some fields (creating the row if missing); status changes stamp status_changed_at."""
        allowed = set(ACCOUNTS.names()) - {"microsoft_user_id", "created_at", "updated_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_account: unknown fields {sorted(unknown)}")
        if changes.get("status") not in (None, *ACCOUNT_STATUSES):
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES}")
        if changes.get("mode") not in (None, *ACCOUNT_MODES):
            raise ValueError(f"mode must be one of {ACCOUNT_MODES}")

        def unit(tx: TxT) -> AccountState:
            now = utcnow()
            row = self._get(ACCOUNTS, user_id, {"microsoft_user_id": user_id}, tx) or {
                "microsoft_user_id": user_id, "created_at": now}
            if "status" in changes and changes["status"] != row.get("status"):
                row["status_changed_at"] = now
            row.update({k: utc(v) if isinstance(v, datetime) else v for k, v in changes.items()})
            row["updated_at"] = now
            self._put(tx, ACCOUNTS, user_id, [row])
            return AccountState(**row)

        return self._atomic(user_id, unit)

    def list_accounts(self) -> list[AccountState]:
        return [AccountState(**r) for r in self._select(ACCOUNTS, None, {})]

    # ------------------------------------------------------------------ calendar subscriptions
    def get_calendar_subscription(self, user_id: str, calendar_id: str) -> CalendarSubscription | None:
        row = self._get(CALENDAR_SUBSCRIPTIONS, user_id,
                        {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id})
        return CalendarSubscription(**row) if row else None

    def list_calendar_subscriptions(self, user_id: str | None = None) -> list[CalendarSubscription]:
        """One user's calendar subscription rows, or every user's (renewal, status)."""
        filters = {"microsoft_user_id": user_id} if user_id is not None else {}
        return [CalendarSubscription(**r) for r in self._select(CALENDAR_SUBSCRIPTIONS, user_id, filters)]

    def update_calendar_subscription(self, user_id: str, calendar_id: str,
                                     **changes: Unpack[SubscriptionChanges]) -> CalendarSubscription:
        """Change some fields of a calendar's subscription row (created when missing)."""
        allowed = set(CALENDAR_SUBSCRIPTIONS.names()) - {"microsoft_user_id", "microsoft_calendar_id", "updated_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_calendar_subscription: unknown fields {sorted(unknown)}")
        key = {"microsoft_user_id": user_id, "microsoft_calendar_id": calendar_id}

        def unit(tx: TxT) -> CalendarSubscription:
            row = self._get(CALENDAR_SUBSCRIPTIONS, user_id, key, tx) or dict(key)
            row.update({k: utc(v) if isinstance(v, datetime) else v for k, v in changes.items()})
            row["updated_at"] = utcnow()
            self._put(tx, CALENDAR_SUBSCRIPTIONS, user_id, [row])
            return CalendarSubscription(**row)

        return self._atomic(user_id, unit)

    def delete_calendar_subscriptions(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        ids = sorted(set(calendar_ids))
        if ids:
            scope = {"microsoft_user_id": user_id, "microsoft_calendar_id": ids}
            self._atomic(user_id, lambda tx: self._delete(tx, CALENDAR_SUBSCRIPTIONS, user_id, scope))

"""How a user is named for people (status, logs, the CLI): the address they sign in with, not the GUID.

The user row's `data` is Graph's `/me` (or `/users/{id}`) object; its `mail` or
`userPrincipalName` is what an operator recognises. The GUID stays the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.storage.base import Repository


def address(data: dict[str, Any] | None) -> str | None:
    """The user's mail address or principal name, if the row has one."""
    data = data or {}
    value = data.get("mail") or data.get("userPrincipalName")
    return value if isinstance(value, str) and value else None


def display_name(data: dict[str, Any] | None) -> str | None:
    value = (data or {}).get("displayName")
    return value if isinstance(value, str) and value else None


def label(user_id: str, data: dict[str, Any] | None) -> str:
    """The address, else the display name, else the id: for log lines and tables."""
    return address(data) or display_name(data) or user_id


def label_of(repo: Repository, user_id: str) -> str:
    """`label` from the stored user row; the id when there is none (or the database cannot say)."""
    try:
        user = repo.get_user(user_id)
    except Exception:  # a label is never worth failing the caller over
        return user_id
    return label(user_id, user.data if user else None)


def resolve(repo: Repository, given: str) -> str:
    """The microsoft_user_id of `given`: an id as it is, or a linked user's address (case-insensitive)."""
    if "@" not in given:
        return given
    wanted = given.lower()
    for user in repo.list_users():
        if (address(user.data) or "").lower() == wanted or \
                str((user.data or {}).get("userPrincipalName") or "").lower() == wanted:
            return user.microsoft_user_id or given
    return given

"""Errors of the accounts area, each carrying a message safe to show an operator."""

from __future__ import annotations


class AuthError(Exception):
    """Base class."""


class ReauthRequired(AuthError):
    """The identity platform rejected the user's grant: the user must sign in again.

    The account is already marked `reauth_required`; syncing that user stops."""

    def __init__(self, user_id: str, reason: str) -> None:
        super().__init__(f"user {user_id} must sign in again: {reason}")
        self.user_id = user_id
        self.reason = reason


class TokenError(AuthError):
    """A token could not be obtained for a transient or configuration reason (retry later)."""


class NotLinked(AuthError):
    """No account is linked under this user id: there is no token to get (not worth a retry)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id} is not linked")
        self.user_id = user_id


class SigninError(AuthError):
    """A sign-in callback that cannot complete; the message is shown on the 400 page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

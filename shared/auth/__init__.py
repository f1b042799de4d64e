"""Accounts: sign-in, WebhookDB-style client requests, app-only onboarding, tokens.

Every module keeps MSAL and HTTP imports inside functions so the HTTP
triggers stay cheap to import.
"""

from shared.auth.errors import AuthError, NotLinked, ReauthRequired, SigninError, TokenError

__all__ = ["AuthError", "NotLinked", "ReauthRequired", "SigninError", "TokenError"]

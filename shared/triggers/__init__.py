"""Function triggers, one blueprint per area.

Each module defines `bp = func.Blueprint()` and a few short triggers that parse
the request, call one function of the package and turn its result or error into
a response. Heavy modules (MSAL, Azure SDKs, psycopg, cryptography) are imported
inside the trigger bodies, never at module load: Graph gives the notification
endpoint 3 seconds and the validation handshake 10, cold start included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import azure.functions as func


def blueprints() -> list[func.Blueprint]:
    """Every blueprint of the app, in registration order (function_app.py and the OpenAPI description)."""
    from shared.triggers import accounts, actions, feed, health, maintenance, notifications

    return [health.bp, accounts.bp, actions.bp, maintenance.bp, notifications.bp, feed.bp]

"""Run one catalogue action for a linked user or app-only, and map its failures for the surfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.actions.catalogue import Action, InputError, get_action, parse_inputs
from shared.actions.context import ActionContext

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph import GraphApi, GraphClient


def find(name: str) -> Action:
    try:
        return get_action(name)
    except KeyError:
        raise InputError(None, f"unknown action {name!r} (see GET /api/actions or `python -m shared actions`)")\
            from None


def _client(act: Action, user_id: str | None, app_only: bool, settings: Settings) -> GraphClient:
    from shared.graph import app_client, client_for_user

    if app_only:
        if act.needs_user and not user_id:
            raise InputError("user_id", "app-only actions on a mailbox need the user's id or principal name")
        return app_client(settings, mailbox=user_id)
    if user_id:
        return client_for_user(user_id, settings)
    if act.needs_user:
        raise InputError("user_id", "is required: the linked user whose mailbox the action works on")
    return app_client(settings)


def run_action(
    name: str,
    *,
    user_id: str | None = None,
    inputs: dict[str, Any] | None = None,
    app_only: bool | None = None,
    settings: Settings | None = None,
    client: GraphApi | None = None,
) -> Any:
    """Validate `inputs` against the catalogue and run the action.

    `app_only` defaults to the APP_ONLY setting: the app token with /users/{user_id} paths;
    otherwise the linked user's delegated token with /me paths. `client` overrides the
    Graph client (tests, callers holding one already).
    """
    if settings is None:
        from shared.config import get_settings

        settings = get_settings()
    act = find(name)
    values = parse_inputs(act, inputs)
    app_only = settings.app_only if app_only is None else app_only
    if client is None:
        client = _client(act, user_id, app_only, settings)
    ctx = ActionContext(client=client, settings=settings, user_id=user_id, app_only=app_only)
    return act.function(ctx, values)


def error_status(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, JSON body, headers) for a failed action. Unknown exceptions are not mapped here."""
    from shared.graph import GraphError

    if isinstance(exc, InputError):
        return 400, {"error": {"code": "InvalidInput", "message": str(exc), "input": exc.input}}, {}
    if isinstance(exc, GraphError):
        status = exc.status
        if exc.code == "ForeignHostRefused":
            http = 400
        elif status is None:
            http = 504 if exc.code == "Timeout" else 502
        elif status == 401:
            http = 502  # our token was refused even after a refresh: the caller is not at fault
        elif status in (503, 504) or 400 <= status < 500:
            http = status
        else:
            http = 502
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else {}
        body = {"error": {"code": exc.code, "message": exc.message, "graphStatus": status,
                          "requestId": exc.request_id, "attempts": exc.attempts}}
        return http, body, headers
    from shared.auth.errors import AuthError, NotLinked, ReauthRequired, TokenError

    if isinstance(exc, ReauthRequired):
        return 409, {"error": {"code": "ReauthRequired", "message": str(exc), "userId": exc.user_id}}, {}
    if isinstance(exc, NotLinked):
        return 404, {"error": {"code": "NotLinked", "message": str(exc), "userId": exc.user_id}}, {}
    if isinstance(exc, TokenError):
        return 503, {"error": {"code": "TokenUnavailable", "message": str(exc)}}, {}
    if isinstance(exc, AuthError):
        return 403, {"error": {"code": type(exc).__name__, "message": str(exc)}}, {}
    from shared.storage.tablekeys import KeyTooLong

    if isinstance(exc, KeyTooLong):
        return 400, {"error": {"code": "InvalidInput", "message": str(exc)}}, {}
    from shared.config import ConfigError

    if isinstance(exc, ConfigError):
        return 500, {"error": {"code": "ConfigError", "message": str(exc)}}, {}
    return 500, {"error": {"code": "InternalError", "message": type(exc).__name__}}, {}

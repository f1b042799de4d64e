"""`/api/actions`: the action catalogue over HTTP (function key).

    GET  /api/actions                 -> {"actions": [{name, slug, inputs: [...]}, ...]}
    GET  /api/actions/{action}        -> one action's description
    POST /api/actions/{action}        body {"user_id": "...", "app_only": false, "inputs": {...}}
         200 {"action": slug, "result": ...}; a binary result is returned as the bytes themselves.
         400 {"error": {"code": "InvalidInput", "message", "input"}} naming the bad input;
         Graph failures keep Graph's status (4xx, 429 with Retry-After, 503/504; others 502)
         with Graph's code and message.

`user_id` is the linked user's id (delegated, /me paths) or, app-only, the
mailbox's id or principal name (/users/{id}). Imports stay inside the bodies
so the function app starts fast.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("shared.triggers.actions")

BODY_KEYS = {"user_id", "userId", "user", "app_only", "appOnly", "inputs"}
MAX_USER_ID_CHARS = 1024  # a user id, object id or principal name
MAX_BODY_BYTES = 32 * 1024 * 1024  # inline attachments and raw uploads; Graph's own limits are lower


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def _action_name(req: func.HttpRequest) -> str:
    """The {action} route value; decoded here because not every host decodes it ('Create%20Event')."""
    from urllib.parse import unquote

    return unquote(req.route_params.get("action", ""))


def _bad(message: str, input_name: str | None = None) -> func.HttpResponse:
    return _json(400, {"error": {"code": "InvalidInput", "message": message, "input": input_name}})


@bp.route(route="actions", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_actions(req: func.HttpRequest) -> func.HttpResponse:
    from shared.actions import ACTIONS

    return _json(200, {"actions": [a.describe() for a in ACTIONS.values()]})


@bp.route(route="actions/{action}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def describe_action(req: func.HttpRequest) -> func.HttpResponse:
    from shared.actions import get_action

    try:
        act = get_action(_action_name(req))
    except KeyError:
        return _json(404, {"error": {"code": "UnknownAction", "message": "no such action"}})
    return _json(200, act.describe())


@bp.route(route="actions/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def run_action(req: func.HttpRequest) -> func.HttpResponse:
    from shared.actions import Binary, error_status, get_action
    from shared.actions import run_action as run

    name = _action_name(req)
    try:
        act = get_action(name)
    except KeyError:
        return _json(404, {"error": {"code": "UnknownAction", "message": f"no action {name!r}; GET /api/actions"}})
    from shared import jsonbody

    try:
        body = jsonbody.parse(req.get_body() or b"{}", max_bytes=MAX_BODY_BYTES)
    except jsonbody.BodyError as exc:
        return _bad(f"the body must be JSON {{\"user_id\": ..., \"inputs\": {{...}}}}: {exc.message}")
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    unknown = set(body) - BODY_KEYS
    if unknown:
        return _bad(f"unknown body keys {sorted(unknown)}; inputs go under \"inputs\"", sorted(unknown)[0])
    user_id = body.get("user_id") or body.get("userId") or body.get("user")
    app_only = body.get("app_only", body.get("appOnly"))
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        return _bad("inputs must be a JSON object", "inputs")
    if user_id is not None and not jsonbody.plain_text(user_id, MAX_USER_ID_CHARS):
        return _bad(f"user_id must be a string of 1-{MAX_USER_ID_CHARS} characters without control characters",
                    "user_id")
    if app_only is not None and not isinstance(app_only, bool):
        return _bad("app_only must be true or false", "app_only")
    try:
        result = run(act.slug, user_id=user_id, inputs=inputs, app_only=app_only)
    except Exception as exc:
        status, error, headers = error_status(exc)
        if status >= 500 and error["error"]["code"] == "InternalError":
            log.exception("action %s failed", act.slug)
        return _json(status, error, headers)
    if isinstance(result, Binary):
        mimetype, _, params = result.content_type.partition(";")
        charset = next((p.split("=", 1)[1].strip().strip('"') for p in params.split(";")
                        if p.strip().lower().startswith("charset=")), None)
        return func.HttpResponse(result.content, status_code=200, mimetype=mimetype.strip(), charset=charset)
    return _json(200, {"action": act.slug, "result": result})

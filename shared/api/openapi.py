"""The OpenAPI 3.1 description of the HTTP API, generated, never written by hand.

Paths, methods and auth levels come from the registered HTTP triggers
(`shared.triggers.blueprints()`); each action's request body comes from the
action catalogue (`shared/actions/catalogue.py`). What only prose can say (a
summary, the responses) is declared once per trigger in `OPERATIONS`;
`document()` refuses a trigger without an entry, so a new route cannot go
undescribed. Served at `GET /api/openapi.json`; `python -m shared openapi`
writes docs/openapi.json (a test checks it is current).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.actions.catalogue import Action, Input

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"

_ERROR_TEXT = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_ERROR_OBJECT = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}
_ACTION_ERRORS = {
    "400": _json({"$ref": "#/components/schemas/ActionError"}, "Invalid body or input (names the input)"),
    "403": _json({"$ref": "#/components/schemas/ActionError"}, "Not allowed for this account"),
    "404": _json({"$ref": "#/components/schemas/ActionError"}, "Unknown action, user not linked, or Graph 404"),
    "4XX": _json({"$ref": "#/components/schemas/ActionError"}, "Graph refused the request (its status kept)",
                 _RETRY_AFTER),
    "500": _json({"$ref": "#/components/schemas/ActionError"}, "Configuration or internal error"),
    "502": _json({"$ref": "#/components/schemas/ActionError"}, "Graph failed"),
    "503": _json({"$ref": "#/components/schemas/ActionError"}, "Graph or the token service unavailable",
                 _RETRY_AFTER),
    "504": _json({"$ref": "#/components/schemas/ActionError"}, "Graph timed out"),
}
_RECEIVER: dict[str, Any] = {
    "requestBody": {"required": False, "content": {JSON: {"schema": {
        "type": "object", "required": ["value"],
        "properties": {"value": {"type": "array", "items": {"type": "object"}}}}}}},
    "parameters": [
        {"name": "validationToken", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Graph's validation handshake: echoed as text/plain"},
        {"name": "sid", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "kid", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {"description": "Validation token echoed", "content": {"text/plain": {"schema": {"type": "string"}}}},
        "202": {"description": "Accepted (items failing the clientState check are ignored)"},
        "400": _json(_ERROR_TEXT, "Malformed batch"),
        "413": _json(_ERROR_TEXT, "Batch too large"),
        "415": _json(_ERROR_TEXT, "Not JSON"),
        "503": _json(_ERROR_TEXT, "Queue unavailable; Graph retries"),
    },
}


@dataclass(frozen=True)
class Operation:
    """What the triggers cannot tell: the summary, parameters, body and responses of one operation."""

    summary: str
    responses: dict[str, Any]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    request_body: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()


_CLIENT_REQUEST_RESPONSES: dict[str, Any] = {
    "200": _json({"type": "object", "required": ["status", "microsoft_user_id"],
                  "properties": {"status": {"type": "string"}, "microsoft_user_id": {"type": "string"}}},
                 "Done"),
    "202": _json({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
                 "Resync queued"),
    "400": _json(_ERROR_TEXT, "Invalid request"),
    "404": _json(_ERROR_TEXT, "Unknown microsoft_user_id"),
    "409": _json(_ERROR_TEXT, "The mailbox is already linked under another microsoft_user_id"),
    "413": _json(_ERROR_TEXT, "Body too large"),
    "500": _json(_ERROR_TEXT, "Internal error"),
    "502": _json(_ERROR_TEXT, "Graph could not be read with the token"),
    "503": _json(_ERROR_TEXT, "Token service unavailable")}
_CLIENT_REQUEST_BODY: dict[str, Any] = {"required": True, "content": {JSON: {"schema": {
    "type": "object", "required": ["type", "microsoft_user_id"],
    "properties": {"type": {"enum": ["LINKED", "REFRESHED", "RESYNC", "UNLINKED", "LINK", "REFRESH", "UNLINK"]},
                   "microsoft_user_id": {"type": "string", "minLength": 1},
                   "refresh_token": {"type": "string"}},
    "additionalProperties": True}}}}

OPERATIONS: dict[str, Operation] = {
    "health": Operation("Liveness (touches neither Graph nor the database)", {
        "200": _json({"type": "object", "required": ["status", "version"],
                      "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}}, "Alive")},
        tags=("operations",)),
    "oauth_start": Operation("Start an interactive sign-in (redirects to the identity platform)", {
        "302": {"description": "Redirect to the authorize endpoint",
                "headers": {"Location": {"schema": {"type": "string"}}}},
        "4XX": {"description": "Sign-in cannot start", "content": _HTML},
        "500": {"description": "Sign-in unavailable", "content": _HTML}},
        [{"name": "microsoft_user_id", "in": "query", "required": False, "schema": {"type": "string"}},
         {"name": "login_hint", "in": "query", "required": False, "schema": {"type": "string"}}],
        tags=("accounts",)),
    "oauth_callback": Operation("Complete a sign-in (the identity platform redirects here)", {
        "200": {"description": "Account connected", "content": _HTML},
        "4XX": {"description": "Account not connected", "content": _HTML},
        "500": {"description": "Account not connected (server error)", "content": _HTML}},
        [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
         for n in ("code", "state", "error", "error_description")],
        tags=("accounts",)),
    "users": Operation("WebhookDB-style account request: LINKED, REFRESHED, RESYNC, UNLINKED (or LINK, REFRESH, "
                       "UNLINK)", _CLIENT_REQUEST_RESPONSES, request_body=_CLIENT_REQUEST_BODY, tags=("accounts",)),
    "webhookdb_users": Operation(
        "The same account requests for a client built for WebhookDB, authenticated by its shared secret",
        {**_CLIENT_REQUEST_RESPONSES, "401": _json(_ERROR_TEXT, "Missing or wrong Whdb-Webhook-Secret")},
        [{"name": "Whdb-Webhook-Secret", "in": "header", "required": True, "schema": {"type": "string"}}],
        request_body=_CLIENT_REQUEST_BODY, tags=("accounts",)),
    "list_actions": Operation("The action catalogue", {
        "200": _json({"type": "object", "required": ["actions"],
                      "properties": {"actions": {"type": "array",
                                                 "items": {"$ref": "#/components/schemas/ActionDescription"}}}},
                     "Every action")}, tags=("actions",)),
    "describe_action": Operation("One action's description", {
        "200": _json({"$ref": "#/components/schemas/ActionDescription"}, "The action"),
        "404": _json(_ERROR_OBJECT, "Unknown action")}, tags=("actions",)),
    "run_action": Operation("Run any action by slug, seed name or alias (the per-action paths are typed)", {
        "200": {"description": "The action's result (JSON, or the bytes of a binary result)",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ActionResult"}},
                            "application/octet-stream": {"schema": {"type": "string"}}}},
        **_ACTION_ERRORS},
        request_body={"required": False, "content": {JSON: {"schema": {
            "type": "object", "properties": {"user_id": {"type": "string"}, "app_only": {"type": "boolean"},
                                             "inputs": {"type": "object"}}}}}},
        tags=("actions",)),
    "status": Operation("Replication health: accounts, totals, queue depths, webhook deliveries", {
        "200": _json({"$ref": "#/components/schemas/Status"}, "The status document"),
        "503": _json({"type": "object", "required": ["healthy", "error"],
                      "properties": {"healthy": {"const": False}, "error": {"type": "string"}}},
                     "Status could not be collected")},
        [{"name": "user", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "Only this microsoft_user_id"}], tags=("operations",)),
    "graph_notifications": Operation("Graph change notifications (trust comes from the HMAC clientState)",
                                     _RECEIVER["responses"], _RECEIVER["parameters"], _RECEIVER["requestBody"],
                                     ("graph",)),
    "graph_lifecycle": Operation("Graph lifecycle notifications", _RECEIVER["responses"],
                                 _RECEIVER["parameters"], _RECEIVER["requestBody"], ("graph",)),
    "openapi": Operation("This description", {
        "200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1 document")},
        tags=("operations",)),
}

_COMPONENTS = {
    "securitySchemes": {
        "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                        "description": "A function key of the Function App"},
        "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
    },
    "schemas": {
        "ActionError": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "input": {"type": ["string", "null"]}}}}},
        "ActionResult": {"type": "object", "required": ["action", "result"],
                         "properties": {"action": {"type": "string"}, "result": {}}},
        "ActionDescription": {"type": "object", "required": ["name", "slug", "area", "inputs"], "properties": {
            "name": {"type": "string"}, "slug": {"type": "string"}, "area": {"type": "string"},
            "description": {"type": "string"}, "needsUser": {"type": "boolean"},
            "aliases": {"type": "array", "items": {"type": "string"}},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "type", "required"]}}}},
        "Status": {"type": "object", "required": ["generated_at", "healthy", "users", "totals", "queues"],
                   "properties": {"generated_at": {"type": "string"}, "healthy": {"type": "boolean"},
                                  "users": {"type": "array", "items": {"type": "object"}},
                                  "totals": {"type": "object"},
                                  "queues": {"type": "object"},
                                  "webhooks": {"type": "object", "description": "Per endpoint: url, kinds, users, "
                                               "delivered, retried, dead_lettered"},
                                  "renewal": {"type": ["object", "null"], "description": "The last renewal run: "
                                              "run, state, shards_planned, shards_done, accounts, renewed, "
                                              "recreated, checked, failed, skipped, started_at, finished_at"}}},
    },
}

_INPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "description": "ISO 8601 (2025-03-01T09:30:00)"},
    "list": {"type": "array"}, "object": {"type": "object"}, "json": {},
}


@dataclass(frozen=True)
class Route:
    name: str
    template: str
    methods: tuple[str, ...]
    auth_level: str
    doc: str


def routes() -> list[Route]:
    """The HTTP triggers of the app, read from the blueprints as the Functions host reads them."""
    import azure.functions as func
    from azure.functions.decorators.http import HttpTrigger

    from shared.triggers import blueprints

    app = func.FunctionApp()
    for blueprint in blueprints():
        app.register_functions(blueprint)
    found = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        methods = tuple(sorted(str(getattr(m, "value", m)).upper() for m in (trigger.methods or [])))
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "FUNCTION").upper()
        name = function.get_function_name() or function.get_user_function().__name__
        found.append(Route(name, (trigger.route or name).strip("/"),
                           methods, level, (function.get_user_function().__doc__ or "").strip()))
    return found


def input_schema(spec: Input) -> dict[str, Any]:
    schema = dict(_INPUT_SCHEMAS[spec.type])
    if spec.choices:
        schema["enum"] = list(spec.choices)
    text = spec.help or spec.label
    if text:
        schema["description"] = text
    if spec.default is not None:
        schema["default"] = spec.default
    return schema


def action_operation(act: Action) -> dict[str, Any]:
    """POST /actions/<slug>: the body's `inputs` typed from the catalogue."""
    inputs = {"type": "object", "additionalProperties": False,
              "properties": {i.name: input_schema(i) for i in act.inputs}}
    required = [i.name for i in act.inputs if i.required and i.default is None]
    if required:
        inputs["required"] = required
    body = {"type": "object", "additionalProperties": False,
            "properties": {"user_id": {"type": "string", "description": "Linked user (or, app-only, the mailbox)"},
                           "app_only": {"type": "boolean"}, "inputs": inputs}}
    if required:
        body["required"] = ["inputs"]
    return {
        "operationId": f"action_{act.slug.replace('-', '_')}", "summary": act.name, "description": act.description,
        "tags": [f"actions: {act.area}"], "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "requestBody": {"required": bool(required), "content": {JSON: {"schema": body}}},
        "responses": {
            "200": {"description": "The action's result",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/ActionResult"}},
                                "application/octet-stream": {"schema": {"type": "string"}}}},
            **_ACTION_ERRORS},
    }


def _operation(route: Route, method: str) -> dict[str, Any]:
    try:
        op = OPERATIONS[route.name]
    except KeyError:
        raise KeyError(f"HTTP function {route.name} has no entry in shared/api/openapi.py OPERATIONS") from None
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
              for p in re.findall(r"{([^}:?]+)", route.template)]
    out: dict[str, Any] = {"operationId": route.name if len(route.methods) == 1 else f"{route.name}_{method}",
                           "summary": op.summary, "tags": list(op.tags), "responses": op.responses}
    if route.doc:
        out["description"] = route.doc.splitlines()[0]
    if params or op.parameters:
        out["parameters"] = params + op.parameters
    if op.request_body and method in ("post", "put", "patch"):
        out["requestBody"] = op.request_body
    out["security"] = [] if route.auth_level == "ANONYMOUS" else [{"functionKey": []}, {"functionKeyQuery": []}]
    return out


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    from shared import __version__
    from shared.actions import ACTIONS

    paths: dict[str, dict[str, Any]] = {}
    for route in routes():
        path = "/" + route.template
        for method in route.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(route, method.lower())
    for act in ACTIONS.values():
        paths.setdefault(f"/actions/{act.slug}", {})["post"] = action_operation(act)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Outlook calendar sync", "version": __version__,
                 "description": "Accounts, the Outlook connector's actions, status and the Graph receivers. "
                                "The change feed's messages are described in docs/CHANGE_FEED.md."},
        "servers": [{"url": "/api"}],
        "paths": dict(sorted(paths.items())),
        "components": _COMPONENTS,
    }

"""Account triggers: interactive sign-in (`/api/oauth/start`, `/api/oauth/callback`) and
WebhookDB-style client requests (`POST /api/users` with a function key, or
`POST /api/webhookdb/users` with WebhookDB's `Whdb-Webhook-Secret` header).

Cold start: MSAL, cryptography and the storage drivers are imported inside
the bodies, never here. Pages never show a traceback; errors are logged
without secrets.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto;">
<h1>{title}</h1><p>{message}</p></body></html>"""
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(status: int, title: str, message: str) -> func.HttpResponse:
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    body = body.encode("utf-8", "replace").decode("utf-8")  # echoed query text may hold lone surrogates
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8",
                             headers=dict(_PAGE_HEADERS))


def _describe(exc: BaseException) -> str:
    from shared.logging_setup import redact

    return redact(f"{type(exc).__name__}: {exc}")[:500]


@bp.route(route="oauth/start", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def oauth_start(req: func.HttpRequest) -> func.HttpResponse:
    from shared.auth import SigninError, signin
    from shared.config import get_settings

    try:
        url = signin.start(get_settings(), microsoft_user_id=req.params.get("microsoft_user_id") or None,
                           login_hint=req.params.get("login_hint") or None)
    except SigninError as exc:
        return _page(exc.status, "Cannot start sign-in", str(exc))
    except Exception as exc:
        log.error("sign-in start failed: %s", _describe(exc))
        return _page(500, "Sign-in unavailable", "Sign-in is not available right now. Please try again later.")
    return func.HttpResponse(status_code=302, headers={"Location": url, **_PAGE_HEADERS})


@bp.route(route="oauth/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    from shared.auth import SigninError, signin
    from shared.config import get_settings

    params = {k: v for k, v in req.params.items() if isinstance(v, str)}
    try:
        result = signin.complete(get_settings(), params)
    except SigninError as exc:
        log.info("sign-in not completed: %s", _describe(exc))
        return _page(exc.status, "Account not connected", str(exc))
    except Exception as exc:
        log.error("sign-in callback failed: %s", _describe(exc))
        return _page(500, "Account not connected",
                     "Something went wrong while connecting your account. Nothing was stored; please try again.")
    who = result.display_name or result.user_principal_name or "Your account"
    return _page(200, "Account connected",
                 f"{who} is connected. Your calendar is being copied now; you can close this page.")


@bp.route(route="users", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def users(req: func.HttpRequest) -> func.HttpResponse:
    from shared.auth import client_requests
    from shared.config import get_settings

    return _client_reply(lambda: client_requests.handle(get_settings(), req.get_body()))


@bp.route(route="webhookdb/users", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def webhookdb_users(req: func.HttpRequest) -> func.HttpResponse:
    """The same requests for a client built for WebhookDB: its `Whdb-Webhook-Secret` header is the
    credential (checked in code, so the host lets the request through without a function key)."""
    from shared.auth import client_requests
    from shared.config import get_settings

    secret = req.headers.get(client_requests.WEBHOOKDB_SECRET_HEADER)
    return _client_reply(lambda: client_requests.handle_webhookdb(get_settings(), secret, req.get_body()))


def _client_reply(answer: Callable[[], Any]) -> func.HttpResponse:
    """Run a client request; its Reply as JSON (a failure is logged without secrets, answered 500)."""
    from shared.auth import client_requests

    try:
        reply = answer()
    except Exception as exc:
        log.error("client request failed: %s", _describe(exc))
        reply = client_requests.Reply(500, {"error": "internal error; see the function log"})
    headers = {"Retry-After": "5"} if reply.status == 503 else None  # queue or token service out: retry soon
    return func.HttpResponse(json.dumps(reply.body), status_code=reply.status, mimetype="application/json",
                             headers=headers)

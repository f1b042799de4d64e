"""`POST /api/users`: WebhookDB-compatible account requests from the customer's backend.

The customer runs the consent screen itself and tells us about the result:

- LINKED    {microsoft_user_id, refresh_token}: validated by one refresh and a
            `/me` read, stored encrypted (the rotated token if one came back),
            first full sync queued with a subscription.
- REFRESHED {microsoft_user_id, refresh_token}: replaces the stored token; an
            account waiting for re-consent becomes linked and resyncs.
- RESYNC    {microsoft_user_id}: queue a full resync.
- UNLINKED  {microsoft_user_id}: delete the Graph subscription (best effort),
            then every row of the user.

Unlike WebhookDB, rotated tokens are kept and a rejected token is reported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from shared.auth import deps
from shared.auth.errors import TokenError
from shared.queues.base import QueueUnavailable
from shared.storage.tablekeys import KeyTooLong

log = logging.getLogger(__name__)

TYPES = ("LINKED", "REFRESHED", "RESYNC", "UNLINKED")
_NEEDS_TOKEN = {"LINKED", "REFRESHED"}
MAX_FIELD_LENGTH = 16384


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


def _bad(message: str, status: int = 400) -> Reply:
    return Reply(status, {"error": message})


def _field(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD_LENGTH:
        return None
    return value.strip()


def handle(settings, body: bytes) -> Reply:
    """Validate and execute one request; never raises for a client's mistake."""
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return _bad("body must be JSON")
    if not isinstance(payload, dict):
        return _bad("body must be a JSON object")
    kind = payload.get("type")
    if kind is None or kind == "":
        return _bad("missing field: type")
    if kind not in TYPES:
        return _bad(f"unknown type: {str(kind)[:64]!r} (expected one of {', '.join(TYPES)})")
    user_id = _field(payload, "microsoft_user_id")
    if user_id is None:
        return _bad("missing field: microsoft_user_id")
    refresh_token = _field(payload, "refresh_token")
    if kind in _NEEDS_TOKEN and refresh_token is None:
        return _bad("missing field: refresh_token")
    try:
        if kind == "LINKED":
            return linked(settings, user_id, refresh_token or "")
        if kind == "REFRESHED":
            return refreshed(settings, user_id, refresh_token or "")
        if kind == "RESYNC":
            return resync(settings, user_id)
        return unlinked(settings, user_id)
    except TokenError as exc:
        return _bad(str(exc), 503)
    except QueueUnavailable:  # linked or not, the sync could not be queued: the caller retries
        return _bad("the sync queue is unreachable; retry later", 503)
    except KeyTooLong as exc:  # an id Table Storage cannot hold as a key: the caller's mistake
        return _bad(f"microsoft_user_id: {exc}")


def linked(settings, user_id: str, refresh_token: str) -> Reply:
    from shared.auth import graph_http
    from shared.auth.signin import link_delegated
    from shared.auth.tokens import GrantRejected, get_token_service
    from shared.queues.messages import SyncRequest

    service = get_token_service(settings)
    try:
        result = service.redeem(refresh_token)
    except GrantRejected as rejected:
        return _bad(f"refresh_token was rejected by the identity platform: {rejected.reason}")
    try:
        me = graph_http.get_json(settings, "/me", result["access_token"])
    except graph_http.GraphError as exc:
        return _bad(f"could not read /me with the token: {exc}", 502)
    link_delegated(settings, user_id, me, result.get("refresh_token") or refresh_token, result)
    deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
    return Reply(200, {"status": "linked", "microsoft_user_id": user_id, "graph_user_id": me.get("id")})


def refreshed(settings, user_id: str, refresh_token: str) -> Reply:
    from shared.auth.tokens import get_token_service
    from shared.queues.messages import SyncRequest

    repo = deps.repository(settings)
    if repo.get_user(user_id) is None:
        return linked(settings, user_id, refresh_token)  # unknown user: a late LINKED
    service = get_token_service(settings)
    service.store_refresh_token(user_id, refresh_token)
    service.invalidate(user_id)
    account = repo.get_account(user_id)
    if account is not None and account.status != "linked":
        repo.update_account(user_id, status="linked", status_reason=None, status_changed_at=deps.utcnow(),
                            mode="delegated")
        # Changes made while the grant was dead were never seen: catch up in full.
        deps.enqueue(SyncRequest(user_id, "resync", full=True, subscribe=True), settings)
    return Reply(200, {"status": "refreshed", "microsoft_user_id": user_id})


def resync(settings, user_id: str) -> Reply:
    from shared.queues.messages import SyncRequest

    if deps.repository(settings).get_user(user_id) is None:
        return _bad(f"unknown microsoft_user_id: {user_id[:128]}", 404)
    deps.enqueue(SyncRequest(user_id, "resync", full=True), settings)
    return Reply(202, {"status": "resync queued", "microsoft_user_id": user_id})


def unlinked(settings, user_id: str) -> Reply:
    repo = deps.repository(settings)
    row = repo.get_user(user_id)
    if row is None:
        return Reply(200, {"status": "unlinked", "microsoft_user_id": user_id, "existed": False})
    from shared.subscriptions import delete_subscription

    subscription_deleted = delete_subscription(user_id, settings)
    repo.delete_user(user_id)
    from shared.auth.tokens import get_token_service

    get_token_service(settings).invalidate(user_id)
    return Reply(200, {"status": "unlinked", "microsoft_user_id": user_id, "existed": True,
                       "subscription_deleted": subscription_deleted})

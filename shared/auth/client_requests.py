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

WebhookDB's spellings `LINK`, `REFRESH` and `UNLINK` mean the same as the past-tense
ones. Any other field of a LINKED/REFRESHED body is kept in the user row's `data`
beside the `/me` profile (docs/MIGRATING.md shows the shape); the refresh token never is.

Credentials: `POST /api/users` takes a function key (the host checks it);
`POST /api/webhookdb/users` takes WebhookDB's `Whdb-Webhook-Secret` header instead,
compared in constant time with the secret `whdb-webhook-secret` of the secret store
(that route answers 401 to everything while the secret does not exist).

Unlike WebhookDB, rotated tokens are kept and a rejected token is reported.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.auth import deps
from shared.auth.errors import TokenError
from shared.queues.base import QueueUnavailable
from shared.storage.tablekeys import KeyTooLong

if TYPE_CHECKING:
    from shared.config import Settings

log = logging.getLogger(__name__)

TYPES = ("LINKED", "REFRESHED", "RESYNC", "UNLINKED")
ALIASES = {"LINK": "LINKED", "REFRESH": "REFRESHED", "UNLINK": "UNLINKED"}  # WebhookDB accepts both
_NEEDS_TOKEN = {"LINKED", "REFRESHED"}
MAX_FIELD_LENGTH = 16384
MAX_EXTRA_CHARS = 32768  # the client's own fields kept in `data`, measured as compact JSON
# Fields of a request that are the request itself, never kept in `data`.
_REQUEST_FIELDS = frozenset({"type", "microsoft_user_id", "refresh_token", "encrypted_refresh_token"})
WEBHOOKDB_SECRET = "whdb-webhook-secret"  # noqa: S105 - a name in the secret store, not a value
WEBHOOKDB_SECRET_HEADER = "Whdb-Webhook-Secret"  # noqa: S105 - a header name
ABSENT_RECHECK_SECONDS = 60.0  # a secret stored later opens the route within this time
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


def _bad(message: str, status: int = 400) -> Reply:
    return Reply(status, {"error": message})


def _field(payload: dict[str, Any], name: str) -> str | None:
    from shared.jsonbody import plain_text

    value = payload.get(name)
    if not plain_text(value, MAX_FIELD_LENGTH) or not value.strip():
        return None
    return value.strip()


@dataclass
class _Absence:
    """Until when the secret is known to be missing (the store caches only values it found)."""

    until: float = 0.0


def _webhookdb_secret(settings: Settings) -> str | None:
    """The stored secret. Its absence is remembered for ABSENT_RECHECK_SECONDS, so anonymous
    requests to a deployment without it do not each cost a Key Vault read."""
    from shared import runtime
    from shared.secrets import open_secret_store

    absence = runtime.cached("auth:webhookdb-secret-absence", _Absence)
    now = time.monotonic()
    if now < absence.until:
        return None
    value = open_secret_store(settings).get(WEBHOOKDB_SECRET)
    if not value:
        absence.until = now + ABSENT_RECHECK_SECONDS
    return value


def webhookdb_secret_matches(settings: Settings, presented: str | None) -> bool:
    """True when `presented` equals the stored `whdb-webhook-secret` (constant time); False when
    either is missing, so the WebhookDB route is closed until an operator stores the secret."""
    if not presented:
        return False
    expected = _webhookdb_secret(settings)
    if not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def handle_webhookdb(settings: Settings, presented_secret: str | None, body: bytes) -> Reply:
    """A request authenticated by WebhookDB's shared-secret header instead of a function key."""
    if not webhookdb_secret_matches(settings, presented_secret):
        return _bad(f"missing or wrong {WEBHOOKDB_SECRET_HEADER} header", 401)
    return handle(settings, body)


def client_fields(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The body's fields that are not the request itself (kept in `data`, as WebhookDB does);
    None when they are too large (or too deeply nested) to keep."""
    extra = {k: v for k, v in payload.items() if k not in _REQUEST_FIELDS}
    try:
        size = len(json.dumps(extra, separators=(",", ":")))
    except (RecursionError, ValueError):  # nested deeper than the encoder goes
        return None
    return extra if size <= MAX_EXTRA_CHARS else None


def handle(settings: Settings, body: bytes) -> Reply:
    """Validate and execute one request; never raises for a client's mistake."""
    from shared import jsonbody

    try:
        payload = jsonbody.parse(body or b"", max_bytes=MAX_BODY_BYTES)
    except jsonbody.BodyError as exc:
        return _bad(f"body must be JSON: {exc.message}", exc.status)
    if not isinstance(payload, dict):
        return _bad("body must be a JSON object")
    kind = payload.get("type")
    if kind is None or kind == "":
        return _bad("missing field: type")
    kind = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in TYPES:
        return _bad(f"unknown type: {str(kind)[:64]!r} (expected one of {', '.join(TYPES)}, "
                    f"or {', '.join(ALIASES)})")
    user_id = _field(payload, "microsoft_user_id")
    if user_id is None:
        return _bad("missing field: microsoft_user_id")
    refresh_token = _field(payload, "refresh_token")
    if kind in _NEEDS_TOKEN and refresh_token is None:
        return _bad("missing field: refresh_token")
    extra = client_fields(payload)
    if extra is None:
        return _bad(f"the body's other fields exceed {MAX_EXTRA_CHARS} characters of JSON (or are nested too deeply)")
    try:
        if kind == "LINKED":
            return linked(settings, user_id, refresh_token or "", extra)
        if kind == "REFRESHED":
            return refreshed(settings, user_id, refresh_token or "", extra)
        if kind == "RESYNC":
            return resync(settings, user_id)
        return unlinked(settings, user_id)
    except TokenError as exc:
        return _bad(str(exc), 503)
    except QueueUnavailable:  # linked or not, the sync could not be queued: the caller retries
        return _bad("the sync queue is unreachable; retry later", 503)
    except KeyTooLong as exc:  # an id Table Storage cannot hold as a key: the caller's mistake
        return _bad(f"microsoft_user_id: {exc}")


def linked(settings: Settings, user_id: str, refresh_token: str, extra: dict[str, Any] | None = None) -> Reply:
    from shared.auth import graph_http
    from shared.auth.signin import link_delegated, linked_as
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
    others = [linked for linked in linked_as(deps.repository(settings), str(me.get("id") or "")) if linked != user_id]
    if others:  # one mailbox, one account id: two ids would fight over the same event rows
        return _bad(f"this mailbox is already linked as microsoft_user_id {others[0][:128]}; "
                    "send UNLINKED for that id first, or use it", 409)
    link_delegated(settings, user_id, me, result.get("refresh_token") or refresh_token, result)
    if extra:
        deps.repository(settings).upsert_user(user_id, {**me, **extra})
    deps.enqueue(SyncRequest(user_id, "linked", full=True, subscribe=True), settings)
    return Reply(200, {"status": "linked", "microsoft_user_id": user_id, "graph_user_id": me.get("id")})


def refreshed(settings: Settings, user_id: str, refresh_token: str, extra: dict[str, Any] | None = None) -> Reply:
    from shared.auth.tokens import get_token_service
    from shared.queues.messages import SyncRequest

    repo = deps.repository(settings)
    row = repo.get_user(user_id)
    if row is None:
        return linked(settings, user_id, refresh_token, extra)  # unknown user: a late LINKED
    service = get_token_service(settings)
    service.store_refresh_token(user_id, refresh_token)
    if extra:
        repo.upsert_user(user_id, {**(row.data or {}), **extra})
    service.invalidate(user_id)
    account = repo.get_account(user_id)
    if account is not None and account.status != "linked":
        repo.update_account(user_id, status="linked", status_reason=None, status_changed_at=deps.utcnow(),
                            mode="delegated")
        # Changes made while the grant was dead were never seen: catch up in full.
        deps.enqueue(SyncRequest(user_id, "resync", full=True, subscribe=True), settings)
    return Reply(200, {"status": "refreshed", "microsoft_user_id": user_id})


def resync(settings: Settings, user_id: str) -> Reply:
    from shared.queues.messages import SyncRequest

    if deps.repository(settings).get_user(user_id) is None:
        return _bad(f"unknown microsoft_user_id: {user_id[:128]}", 404)
    deps.enqueue(SyncRequest(user_id, "resync", full=True), settings)
    return Reply(202, {"status": "resync queued", "microsoft_user_id": user_id})


def unlinked(settings: Settings, user_id: str) -> Reply:
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

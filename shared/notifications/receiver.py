"""Where Graph's change and lifecycle notifications enter the app, and become queue messages.

The whole path is: validation handshake, or parse -> verify each item's
clientState against the sid/kid of the request URL (HMAC, no database) ->
one SyncRequest per user and calendar on the sync queue (OUTBOUND routes: the item
itself on the `outlook-notifications` queue and the webhooks) -> 202. Nothing here waits on Graph or the database,
and nothing heavy is imported: Graph allows 10 s for the handshake and 3 s for
an acknowledgement, cold start included.

`handle(...)` is plain Python (no azure.functions), so the triggers stay a few
lines and the tests call it directly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.queues.messages import SyncRequest

log = logging.getLogger("shared.notifications")

MAX_BODY_BYTES = 4 * 1024 * 1024      # ~5,000 notifications; Graph batches are far smaller
MAX_TOKEN_CHARS = 2048                # validation tokens are a few hundred characters
MAX_ITEMS = 5000
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


@dataclass(frozen=True)
class Reply:
    status: int
    body: str = ""
    content_type: str = "application/json"
    retry_after: int | None = None  # seconds, sent as Retry-After (with a 503)


RETRY_AFTER_SECONDS = 5  # when the queue is out: Graph retries the batch after this


@dataclass
class Counters:
    """In-process counters of what the receiver saw (status and logs read them)."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0          # clientState mismatch, unknown key or routing
    malformed_items: int = 0
    bad_requests: int = 0
    lifecycle: int = 0
    outbound: int = 0
    enqueue_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


COUNTERS = Counters()


def counters() -> dict[str, int]:
    return COUNTERS.snapshot()


def _error(status: int, message: str) -> Reply:
    COUNTERS.add(bad_requests=1)
    return Reply(status, json.dumps({"error": message}))


def validation_reply(token: str) -> Reply:
    """200 text/plain with the decoded token exactly; refused when absurdly long or not text."""
    if len(token) > MAX_TOKEN_CHARS:
        return _error(400, f"validationToken longer than {MAX_TOKEN_CHARS} characters")
    if any(ord(ch) < 32 and ch not in "\t" for ch in token):
        return _error(400, "validationToken contains control characters")
    if not token.isascii() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in token):
        return _error(400, "validationToken is not valid Unicode text")
    return Reply(200, token, "text/plain")


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_batch(body: bytes, content_type: str | None) -> list[Any] | Reply:
    """The `value` list of a notification batch, or the 4xx reply explaining what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"notification body over {MAX_BODY_BYTES} bytes")
    if not _is_json(content_type):
        return _error(415, "expected Content-Type: application/json")
    if not body:
        return _error(400, "empty body: expected {\"value\": [...]} or a validationToken query parameter")
    from shared import jsonbody

    try:
        doc = jsonbody.parse(body, max_bytes=MAX_BODY_BYTES)
    except jsonbody.BodyError as exc:
        return _error(exc.status, exc.message)
    items = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return _error(400, "expected a JSON object with a \"value\" array")
    if len(items) > MAX_ITEMS:
        return _error(413, f"more than {MAX_ITEMS} notifications in one batch")
    return items


@dataclass
class Routed:
    """Queue messages built from one batch."""

    sync: dict[tuple[str, str | None, str | None, str | None], SyncRequest] = field(default_factory=dict)
    outbound: list[str] = field(default_factory=list)
    rejected: int = 0
    malformed: int = 0
    lifecycle: int = 0


def route(items: list[Any], sid: str | None, kid: str | None, received_at: float) -> Routed:
    """Verify every item and group the valid ones: one sync request per user and calendar (per lifecycle event)."""
    from shared.notifications import client_state
    from shared.queues.messages import SyncRequest

    out = Routed()
    verify = client_state.verifier(sid, kid)
    for item in items:
        if not isinstance(item, dict):
            out.malformed += 1
            continue
        routing = verify(item.get("clientState"))
        if routing is None:
            out.rejected += 1
            continue
        event = item.get("lifecycleEvent")
        if event is not None and (not isinstance(event, str) or event not in LIFECYCLE_EVENTS):
            out.malformed += 1
            continue
        subscription_id = item.get("subscriptionId") if isinstance(item.get("subscriptionId"), str) else None
        if event:
            out.lifecycle += 1
        if routing.kind == client_state.OUTBOUND:
            out.outbound.append(_outbound_message(routing.value, item, received_at))
            continue
        calendar = routing.calendar_id  # a calendar's subscription: that calendar's delta round only
        key: tuple[str, str | None, str | None, str | None]
        if event:
            key = (routing.value, calendar, event, subscription_id)
            out.sync[key] = SyncRequest(routing.value, "resync", lifecycle_event=event,
                                        subscription_id=subscription_id, received_at=received_at,
                                        calendar_id=calendar)
        else:
            key = (routing.value, calendar, None, None)
            out.sync.setdefault(key, SyncRequest(routing.value, "notification", subscription_id=subscription_id,
                                                 received_at=received_at, calendar_id=calendar))
    return out


def _outbound_message(label: str, item: dict[str, Any], received_at: float) -> str:
    """A subscription made through the actions: its notification goes to the user's systems as is.

    Schema notification.v1 / lifecycle.v1 (shared/feed/schemas); `id` hashes the notification, so a
    duplicate Graph delivery has the same id.
    """
    from shared.feed.contract import LIFECYCLE, NOTIFICATION, content_id, encode

    clean = {k: v for k, v in item.items() if k != "clientState"}
    kind = "lifecycle" if item.get("lifecycleEvent") else "notification"
    return encode({"schema": LIFECYCLE if kind == "lifecycle" else NOTIFICATION,
                   "id": content_id(label, json.dumps(clean, sort_keys=True)), "type": kind, "label": label,
                   "received_at": received_at, "notification": clean})


def handle(body: bytes, content_type: str | None, params: dict[str, str], *,
           enqueue: Callable[[Routed], None] | None = None) -> Reply:
    """One POST to /api/graph/notifications or /api/graph/lifecycle."""
    if "validationToken" in params or "validationtoken" in params:
        # The host already URL-decoded the query string: decoding again would corrupt a '%' or '+'.
        return validation_reply(params.get("validationToken", params.get("validationtoken", "")))
    received_at = time.time()
    items = parse_batch(body, content_type)
    if isinstance(items, Reply):
        return items
    routed = route(items, params.get("sid"), params.get("kid"), received_at)
    COUNTERS.add(received=len(items), rejected=routed.rejected, malformed_items=routed.malformed,
                 lifecycle=routed.lifecycle, outbound=len(routed.outbound),
                 accepted=len(items) - routed.rejected - routed.malformed)
    if routed.rejected or routed.malformed:
        log.warning("notifications: %d of %d ignored (%d clientState/routing mismatches, %d malformed)",
                    routed.rejected + routed.malformed, len(items), routed.rejected, routed.malformed)
    try:
        (enqueue or _enqueue)(routed)
    except Exception as exc:  # the queue is the one dependency; without it Graph must retry
        COUNTERS.add(enqueue_failures=1)
        log.error("notifications: could not enqueue (%s: %s); answering 503 so Graph retries",
                  type(exc).__name__, exc)
        return Reply(503, json.dumps({"error": "temporarily unable to accept notifications"}),
                     retry_after=RETRY_AFTER_SECONDS)
    return Reply(202, "")


def _enqueue(routed: Routed) -> None:
    from shared.queues import NOTIFICATIONS_QUEUE, SYNC_QUEUE, open_queue

    if routed.sync:
        open_queue(SYNC_QUEUE).send_many(r.to_json() for r in routed.sync.values())
    if routed.outbound:
        from shared.feed.fanout import publish

        publish(open_queue(NOTIFICATIONS_QUEUE), routed.outbound)

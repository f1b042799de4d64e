"""`clientState` derived by HMAC, checked without a database round trip.

Graph echoes a subscription's `clientState` in every notification and keeps
the `notificationUrl` (query string included) on every delivery. So each
subscription gets a URL carrying an opaque routing value `sid` and the id of
the HMAC key used, and its clientState is HMAC-SHA256(key, kid.sid). The
receiver recomputes it from the URL alone and compares in constant time: no
lookup, so the 3-second acknowledgement never waits on a database.

A `sid` names what a notification is for:
- `sync:<user_id>\n<calendar_id>`: the subscription of one replicated calendar -> a
  delta round of that calendar (Graph notifies `calendars/{id}/events` for it only);
- `sync:<user_id>`: an account-wide subscription made before per-calendar ones -> a sync;
- `out:<label>`: a subscription created through the actions (mail folders,
  extra event subscriptions) -> published to the outbound queue only.

Keys live in the secret store (`notify-key-<kid>`, current id in
`notify-key-current`); old keys keep verifying until their subscriptions are
renewed with the new one. The kid comes from an anonymous URL, so unknown
kids are remembered too (a bounded, expiring set) and a batch looks its kid
up once: a forged 5,000-item batch costs at most one secret-store read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.secrets import SecretStore

SYNC = "sync"
OUTBOUND = "out"
_CURRENT = "notify-key-current"
_KID = re.compile(r"^[0-9A-Za-z]{1,32}$")
MAX_UNKNOWN_KIDS = 1024  # remembered misses (LRU); each costs ~100 bytes
UNKNOWN_KID_TTL_SECONDS = 300.0  # a key created meanwhile by another instance is seen after this
_lock = threading.Lock()
_unknown_lock = threading.Lock()


class InvalidRouting(ValueError):
    """The notification URL's sid/kid are missing or malformed."""


@dataclass(frozen=True)
class SubscriptionTarget:
    """What a subscription request needs: where Graph posts, and the clientState to echo."""

    notification_url: str
    lifecycle_notification_url: str
    client_state: str
    sid: str
    kid: str  # the id of the key that signed client_state (also in both URLs)


@dataclass(frozen=True)
class Routing:
    kind: str  # SYNC or OUTBOUND
    value: str  # the user id, or the outbound label
    calendar_id: str | None = None  # SYNC: the calendar whose subscription this is


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _store() -> SecretStore:
    from shared.secrets import open_secret_store

    return open_secret_store()


def _key_cache() -> dict[str, bytes]:
    from shared import runtime

    return runtime.cached("notify-keys", dict)


def _unknown_kids() -> OrderedDict[str, float]:
    """kid -> when the secret store last said it does not exist (monotonic), oldest first."""
    from shared import runtime

    return runtime.cached("notify-keys-unknown", OrderedDict)


def _key(kid: str) -> bytes | None:
    _keys = _key_cache()
    key = _keys.get(kid)
    if key is not None:
        return key
    if not isinstance(kid, str) or not _KID.match(kid):
        return None
    unknown, now = _unknown_kids(), time.monotonic()
    with _unknown_lock:
        missed_at = unknown.get(kid)
    if missed_at is not None and now - missed_at < UNKNOWN_KID_TTL_SECONDS:
        return None
    raw = _store().get(f"notify-key-{kid}")
    if raw is None:
        with _unknown_lock:
            unknown[kid] = now
            unknown.move_to_end(kid)
            while len(unknown) > MAX_UNKNOWN_KIDS:
                unknown.popitem(last=False)
        return None
    key = _unb64(raw)
    _keys[kid] = key  # a key id never changes meaning: cache for the process lifetime
    with _unknown_lock:
        unknown.pop(kid, None)
    return key


def current_key() -> tuple[str, bytes]:
    """The key new subscriptions are signed with, created on first use."""
    with _lock:
        store = _store()
        kid = store.get(_CURRENT)
        if kid is None:
            kid = secrets.token_hex(4)
            store.set(f"notify-key-{kid}", _b64(secrets.token_bytes(32)))
            store.set(_CURRENT, kid)
        key = _key(kid)
        if key is None:
            raise RuntimeError(f"notification key {kid} is named current but missing from the secret store")
        return kid, key


def rotate_key() -> str:
    """Make a new current key; existing subscriptions keep verifying with theirs."""
    with _lock:
        kid = secrets.token_hex(4)
        store = _store()
        store.set(f"notify-key-{kid}", _b64(secrets.token_bytes(32)))
        store.set(_CURRENT, kid)
    return kid


def _mac(key: bytes, kid: str, sid: str) -> str:
    return _b64(hmac.new(key, f"{kid}.{sid}".encode(), hashlib.sha256).digest())


def encode_sid(kind: str, value: str, calendar_id: str | None = None) -> str:
    if kind not in (SYNC, OUTBOUND) or not value or (kind == SYNC and "\n" in value) \
            or (calendar_id and kind != SYNC):
        raise ValueError("sid kind must be sync or out, with a value (a calendar only for sync)")
    return _b64(f"{kind}:{value}".encode() + (f"\n{calendar_id}".encode() if calendar_id else b""))


def decode_sid(sid: str) -> Routing:
    try:
        kind, _, value = _unb64(sid).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise InvalidRouting("sid is not valid base64url text") from None
    if kind not in (SYNC, OUTBOUND) or not value:
        raise InvalidRouting("sid names no known target")
    if kind == SYNC and "\n" in value:
        user, _, calendar = value.partition("\n")
        if not user or not calendar:
            raise InvalidRouting("sid names no known target")
        return Routing(kind, user, calendar)
    return Routing(kind, value)


def routing_of_url(url: object) -> Routing | None:
    """What a notification URL of this app routes to (its `sid`), or None for another URL.

    Reads a subscription listed by Graph: the actions use it to tell this app's sync
    subscriptions from the ones users created."""
    from urllib.parse import parse_qs, urlsplit

    if not isinstance(url, str):
        return None
    sid = parse_qs(urlsplit(url).query).get("sid", [None])[0]
    try:
        return decode_sid(sid) if sid else None
    except InvalidRouting:
        return None


def issue(kind: str, value: str, settings: Settings | None = None, *,
          calendar_id: str | None = None) -> SubscriptionTarget:
    """URLs and clientState for a new (or renewed-by-recreation) subscription."""
    from shared.config import get_settings

    settings = settings or get_settings()
    kid, key = current_key()
    sid = encode_sid(kind, value, calendar_id)
    query = urlencode({"sid": sid, "kid": kid})
    base = settings.app_base_url
    return SubscriptionTarget(
        notification_url=f"{base}/api/graph/notifications?{query}",
        lifecycle_notification_url=f"{base}/api/graph/lifecycle?{query}",
        client_state=_mac(key, kid, sid),
        sid=sid,
        kid=kid,
    )


def verifier(sid: str | None, kid: str | None) -> Callable[[object], Routing | None]:
    """A check of clientStates for one request URL: the key is looked up and the MAC computed once,
    however many items the batch holds."""
    key = _key(kid) if sid and kid else None
    routing: Routing | None = None
    expected = b""
    if key is not None and sid and kid:
        try:
            expected = _mac(key, kid, sid).encode()
            routing = decode_sid(sid)
        except (InvalidRouting, UnicodeEncodeError):
            routing = None

    def check(client_state: object) -> Routing | None:
        if routing is None or not isinstance(client_state, str) or len(client_state) > 128:
            return None
        given = client_state.encode("utf-8", "surrogatepass")
        return routing if hmac.compare_digest(expected, given) else None

    return check


def verify(sid: str | None, kid: str | None, client_state: object) -> Routing | None:
    """The routing of a genuine notification, or None (unknown key, wrong or missing clientState)."""
    return verifier(sid, kid)(client_state)

"""Change-notification subscriptions: creation with validation handshake, lifetime rules, fan-out."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from . import schema
from .delivery import Delivery, post_once
from .store import Change, Mailbox, Store
from .util import GraphError, iso_offset, iso_z, new_guid, now, parse_iso

MAX_PER_MAILBOX = 1000
NOTIFICATION_ETAG_PREFIX = "CQAAABYAAAA"
# Outlook event/message/contact subscriptions without resource data live up to 10,080 minutes
# (7 days); a tenant with another limit is simulated with `lifetime_limit_minutes`.
DEFAULT_LIFETIME_LIMIT_MINUTES = 10080
_RES = re.compile(
    r"^(?:me|users/(?P<user>[^/]+))/(?P<rest>.+)$", re.IGNORECASE)


@dataclass
class Subscription:
    id: str
    resource: str
    change_types: list[str]
    notification_url: str
    lifecycle_url: str | None
    expiration: dt.datetime
    client_state: str | None
    app_id: str
    tenant_id: str
    user_id: str
    kind: str                  # event | message
    container: str | None      # calendar id / folder id / None (all folders)
    creator_id: str
    latest_tls: str
    immutable_ids: bool = False

    def render(self, with_state: bool = True) -> dict[str, Any]:
        return {
            "id": self.id, "resource": self.resource, "applicationId": self.app_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state if with_state else None,
            "notificationUrl": self.notification_url, "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": iso_z(self.expiration), "creatorId": self.creator_id,
            "includeResourceData": False, "latestSupportedTlsVersion": self.latest_tls,
            "encryptionCertificate": None, "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


class Subscriptions:
    def __init__(self, store: Store, delivery: Delivery, lifetime_limit_minutes: int = DEFAULT_LIFETIME_LIMIT_MINUTES,
                 allow_http: bool = False, validation_timeout: float = 10.0) -> None:
        self.store = store
        self.delivery = delivery
        self.lifetime_limit_minutes = lifetime_limit_minutes
        self.allow_http = allow_http
        self.validation_timeout = validation_timeout
        self.lock = threading.RLock()
        self.subs: dict[str, Subscription] = {}
        self.by_user: dict[str, list[Subscription]] = {}

    def reset(self) -> None:
        with self.lock:
            self.subs.clear()
            self.by_user.clear()

    # -- parsing -------------------------------------------------------------
    def _target(self, resource: str, caller_user: str | None) -> tuple[Mailbox, str, str | None]:
        res = resource.strip().lstrip("/")
        m = _RES.match(res)
        bad = GraphError(400, "InvalidRequest", f"Resource '{resource}' is not supported.")
        if not m:
            raise bad
        if m.group("user"):
            mb = self.store.mailbox(urllib.parse.unquote(m.group("user")).strip("'"))
        elif caller_user:
            mb = self.store.mailboxes[caller_user]
        else:
            raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        rest = re.sub(r"\('([^']*)'\)", r"/\1", m.group("rest")).strip("/")
        segs = rest.split("/")
        low = [s.lower() for s in segs]
        if low == ["events"] or low == ["calendar", "events"]:
            return mb, "event", mb.default_calendar().id
        if len(low) == 3 and low[0] == "calendars" and low[2] == "events":
            # One calendar's events: notifications for that calendar only (its id is one encoded segment).
            return mb, "event", self.store.calendar(mb, urllib.parse.unquote(segs[1])).id
        if low == ["messages"]:
            return mb, "message", None
        if len(low) == 3 and low[0] == "mailfolders" and low[2] == "messages":
            folder = mb.folder_by_name(segs[1])
            if folder is None:
                raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            return mb, "message", folder.id
        raise bad

    # -- API -------------------------------------------------------------------
    def create(self, body: dict[str, Any], app_id: str, tenant_id: str, caller_user: str | None,
               check_permission: Any, immutable_ids: bool = False) -> Subscription:
        body = schema.validate(body, "subscription")
        for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(name):
                raise GraphError(400, "InvalidRequest", f"The '{name}' property is required.")
        change_types = [c.strip() for c in str(body["changeType"]).split(",") if c.strip()]
        if not change_types or any(c not in ("created", "updated", "deleted") for c in change_types):
            raise GraphError(400, "InvalidRequest", f"Invalid 'changeType' value '{body['changeType']}'.")
        client_state = body.get("clientState")
        if client_state is not None and len(str(client_state)) > 128:
            raise GraphError(400, "InvalidRequest", "The 'clientState' property can't be longer than 128 "
                             "characters.")
        if body.get("includeResourceData") and not (body.get("encryptionCertificate") and
                                                    body.get("encryptionCertificateId")):
            raise GraphError(400, "ValidationError", "A valid encryptionCertificate and encryptionCertificateId "
                             "are required when includeResourceData is true.")
        url = str(body["notificationUrl"])
        lifecycle = body.get("lifecycleNotificationUrl")
        for u in filter(None, [url, lifecycle]):
            scheme = urllib.parse.urlsplit(u).scheme.lower()
            if scheme != "https" and not (self.allow_http and scheme == "http"):
                raise GraphError(400, "InvalidRequest", "Subscription Validation request failed. The "
                                 "notification URL must use the HTTPS scheme.")
        try:
            expiration = parse_iso(str(body["expirationDateTime"]))
        except ValueError:
            raise GraphError(400, "InvalidRequest", "Invalid 'expirationDateTime'.") from None
        self._check_expiration(expiration)
        mb, kind, container = self._target(str(body["resource"]), caller_user)
        if caller_user is not None and mb.id != caller_user:
            raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; "
                             "Reason: Access is denied. Check credentials and try again.]")
        check_permission(kind)
        with self.lock:
            active = [s for s in self.by_user.get(mb.id, []) if s.expiration > now()]
            if len(active) >= MAX_PER_MAILBOX:
                raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; "
                                 "Reason: The maximum number of subscriptions for this mailbox has been "
                                 "reached.]")
        self._validate(url)
        if lifecycle:
            self._validate(lifecycle)
        sub = Subscription(id=new_guid(), resource=str(body["resource"]), change_types=change_types,
                           notification_url=url, lifecycle_url=lifecycle, expiration=expiration,
                           client_state=client_state, app_id=app_id, tenant_id=tenant_id, user_id=mb.id,
                           kind=kind, container=container, creator_id=caller_user or app_id,
                           latest_tls=body.get("latestSupportedTlsVersion") or "v1_2",
                           immutable_ids=immutable_ids)
        with self.lock:
            self.subs[sub.id] = sub
            self.by_user.setdefault(mb.id, []).append(sub)
        return sub

    def _check_expiration(self, expiration: dt.datetime) -> None:
        t = now()
        if expiration <= t:
            raise GraphError(400, "InvalidRequest", "Subscription expiration must be in the future.")
        if expiration > t + dt.timedelta(minutes=self.lifetime_limit_minutes):
            raise GraphError(400, "ExtensionError", f"Subscription expiration can only be "
                             f"{self.lifetime_limit_minutes} minutes in the future.")

    def _validate(self, url: str) -> None:
        """The handshake: POST ?validationToken=..., expect 200 text/plain echo within the time limit."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {new_guid()}"
        sep = "&" if urllib.parse.urlsplit(url).query else "?"
        target = f"{url}{sep}validationToken={urllib.parse.quote_plus(token)}"   # Graph encodes spaces as +
        try:
            status, data, headers = post_once(target, b"", {"Content-Type": "text/plain; charset=utf-8",
                                                            "User-Agent": self.delivery.user_agent},
                                              self.validation_timeout, self.delivery.ssl_context)
        except TimeoutError:
            raise GraphError(400, "InvalidRequest", "Subscription validation request timed out.") from None
        except OSError as exc:
            raise GraphError(400, "InvalidRequest", f"Subscription validation request failed. Notification "
                             f"endpoint must respond with 200 OK to validation request. ({exc})") from None
        if status != 200:
            raise GraphError(400, "InvalidRequest", "Subscription validation request failed. Notification "
                             f"endpoint must respond with 200 OK to validation request. (got {status})")
        if not headers.get("content-type", "").lower().startswith("text/plain"):
            raise GraphError(400, "InvalidRequest", "Subscription validation request failed. Response must "
                             "have Content-Type text/plain.")
        if data.decode("utf-8", "replace") != token:
            raise GraphError(400, "InvalidRequest", "Subscription validation request failed. Response must "
                             "exactly match validationToken query parameter.")

    def get(self, sub_id: str, app_id: str | None = None) -> Subscription:
        with self.lock:
            sub = self.subs.get(sub_id)
            if sub is not None and sub.expiration <= now():
                self._drop(sub)
                sub = None
        if sub is None or (app_id is not None and sub.app_id != app_id):
            raise GraphError(404, "ResourceNotFound", f"The object was not found. Subscription '{sub_id}' "
                             "doesn't exist or has expired.")
        return sub

    def list_for(self, app_id: str, caller_user: str | None = None) -> list[Subscription]:
        """The app's subscriptions; with a delegated token (`caller_user`) only those that user created,
        as Graph lists them."""
        with self.lock:
            for s in [s for s in self.subs.values() if s.expiration <= now()]:
                self._drop(s)
            return [s for s in self.subs.values()
                    if s.app_id == app_id and (caller_user is None or s.creator_id == caller_user)]

    def renew(self, sub_id: str, app_id: str, body: dict[str, Any]) -> Subscription:
        body = schema.validate(body, "subscription")
        sub = self.get(sub_id, app_id)
        if "lifecycleNotificationUrl" in body and body["lifecycleNotificationUrl"] != sub.lifecycle_url:
            raise GraphError(400, "InvalidRequest", "lifecycleNotificationUrl can't be updated. Delete the "
                             "subscription and create a new one.")
        if "expirationDateTime" in body:
            exp = parse_iso(str(body["expirationDateTime"]))
            self._check_expiration(exp)
            sub.expiration = exp
        if "notificationUrl" in body and body["notificationUrl"] != sub.notification_url:
            self._validate(str(body["notificationUrl"]))
            sub.notification_url = str(body["notificationUrl"])
        return sub

    def delete(self, sub_id: str, app_id: str | None = None) -> None:
        sub = self.get(sub_id, app_id)
        with self.lock:
            self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        self.subs.pop(sub.id, None)
        lst = self.by_user.get(sub.user_id)
        if lst and sub in lst:
            lst.remove(sub)

    # -- notifications -------------------------------------------------------
    def on_change(self, mb: Mailbox, ch: Change) -> None:
        subs = self.by_user.get(mb.id)
        if not subs:
            return
        t = now()
        for sub in list(subs):
            if sub.kind != ch.kind or ch.change_type not in sub.change_types:
                continue
            if sub.container is not None and sub.container != ch.container_id:
                continue
            if sub.expiration <= t:
                continue
            noun = "Events" if ch.kind == "event" else "Messages"
            resource = f"Users/{mb.id}/{noun}/{ch.item_id}"
            data: dict[str, Any] = {"@odata.type": f"#Microsoft.Graph.{noun[:-1]}", "@odata.id": resource,
                                    "id": ch.item_id}
            if ch.change_type != "deleted":
                change = self._change_key(mb, ch)
                if change:
                    # Exchange's notification etag wraps the change key in its own prefix: it never equals
                    # the item's @odata.etag, so it cannot serve as If-Match.
                    data["@odata.etag"] = f'W/"{NOTIFICATION_ETAG_PREFIX}{change}"'
            self.delivery.enqueue(sub.notification_url, {
                "id": secrets.token_urlsafe(10), "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": iso_offset(sub.expiration),
                "changeType": ch.change_type, "resource": resource, "resourceData": data,
                "clientState": sub.client_state, "tenantId": sub.tenant_id,
            })

    @staticmethod
    def _change_key(mb: Mailbox, ch: Change) -> str | None:
        if ch.kind == "event":
            ev = mb.events.get(ch.item_id)
            return ev.change_key if ev else None
        msg = mb.messages.get(ch.item_id)
        return msg["changeKey"] if msg else None

    def lifecycle(self, sub_id: str, event: str) -> None:
        if event not in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
            raise ValueError(f"unknown lifecycle event {event}")
        sub = self.get(sub_id)
        if sub.lifecycle_url:
            self.delivery.enqueue(sub.lifecycle_url, {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": iso_offset(sub.expiration),
                "tenantId": sub.tenant_id, "clientState": sub.client_state, "lifecycleEvent": event,
            }, kind="lifecycle")
        if event == "subscriptionRemoved":
            with self.lock:
                self._drop(sub)

    def expire(self, sub_id: str) -> None:
        sub = self.get(sub_id)
        sub.expiration = now() - dt.timedelta(seconds=1)
        with self.lock:
            self._drop(sub)

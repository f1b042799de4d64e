"""GraphSimulator: the Python API tests code against; owns state, server and background delivery."""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any

from . import certs, delta, server
from .delivery import Delivery
from .events import render
from .faults import Faults
from .graph import Graph
from .identity import Identity, OAuthError
from .store import Store
from .subscriptions import DEFAULT_LIFETIME_LIMIT_MINUTES, Subscriptions
from .throttle import Throttle
from .util import GraphError, dumps, new_guid
from .wire import Request, Response

log = logging.getLogger("graphsim")
_ID_SEG = re.compile(r"^[0-9a-fA-F-]{36}$|^[A-Za-z0-9_=+-]{20,}$|@")


class GraphSimulator:
    """Microsoft Graph v1.0 + identity platform stand-in served over real HTTPS on 127.0.0.1."""

    def __init__(self, *, lifetime_limit_minutes: int = DEFAULT_LIFETIME_LIMIT_MINUTES,
                 allow_http_notification_urls: bool = False,
                 delta_other_calendars: bool = False, validation_timeout: float = 10.0,
                 notification_timeout: float = 3.0, retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
                 mailbox_concurrency: int = 4, mailbox_rate_limit: int = 10000,
                 mailbox_rate_window_s: float = 600.0, token_lifetime: int = 3599,
                 delivery_workers: int = 4, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.delta_other_calendars = delta_other_calendars
        self.faults = Faults()
        self.store = Store()
        self.identity = Identity(self.store, token_lifetime)
        self.delivery = Delivery(self.faults, timeout=notification_timeout, retry_delays=retry_delays,
                                 workers=delivery_workers)
        self.subscriptions = Subscriptions(self.store, self.delivery, lifetime_limit_minutes,
                                           allow_http_notification_urls, validation_timeout)
        self.store.notify = self.subscriptions.on_change
        self.throttle = Throttle(mailbox_concurrency, mailbox_rate_limit, mailbox_rate_window_s)
        self.graph = Graph(self)
        from .control import Control
        self.control = Control(self)
        self._counters: dict[str, int] = {}
        self._counter_lock = threading.Lock()
        self._httpd: Any = None
        self.certs: certs.CertBundle | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> GraphSimulator:
        if self._httpd is None:
            self.certs = certs.generate()
            # Endpoints with a certificate from this CA (Receiver(tls=...)) are trusted like public ones.
            self.delivery.ssl_context.load_verify_locations(self.certs.ca_file)
            self._httpd, _ = server.serve(self, self.host, self.port, self.certs.server_context())
            self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            server.shutdown(self._httpd)
            self._httpd = None
        self.delivery.stop()

    def __enter__(self) -> GraphSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def ca_file(self) -> str:
        if self.certs is None:
            raise RuntimeError("start() the simulator first")
        return self.certs.ca_file

    def authority(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}"

    def reset(self) -> None:
        """Forget every tenant, token, subscription, pending notification and counter."""
        with self.store.lock:
            self.store.tenants.clear()
            self.store.mailboxes.clear()
            self.store.by_upn.clear()
            self.identity.reset()
            self.subscriptions.reset()
            self.graph.delta_tokens.clear()
            self.delivery.clear()
            self.throttle.reset()
            self.reset_counters()

    # -- directory / identity control ------------------------------------------------
    def create_tenant(self, tenant_id: str | None = None, domain: str | None = None) -> str:
        return self.store.create_tenant(tenant_id, domain)

    def register_app(self, tenant: str, client_id: str | None = None, client_secret: str | None = None,
                     redirect_uris: list[str] | None = None,
                     application_permissions: list[str] | None = None,
                     delegated_permissions: list[str] | None = None) -> tuple[str, str]:
        return self.identity.register_app(tenant, client_id, client_secret, redirect_uris,
                                          application_permissions, delegated_permissions)

    def create_user(self, tenant: str, display_name: str | None = None, user_principal_name: str | None = None,
                    consent: bool = True, user_id: str | None = None, time_zone: str = "UTC") -> str:
        return self.store.create_user(tenant, display_name, user_principal_name, consent, user_id, time_zone)

    def set_consent_user(self, tenant: str, user_id: str) -> None:
        self.identity.consent_user[tenant] = user_id
        self.identity.consent_user["*"] = user_id

    def deny_consent(self, deny: bool = True) -> None:
        self.identity.deny_all = deny

    def revoke_refresh_tokens(self, user: str, code: str = "AADSTS50173") -> int:
        return self.identity.revoke_refresh_tokens(self._uid(user), code)

    def expire_refresh_tokens(self, user: str) -> int:
        return self.identity.revoke_refresh_tokens(self._uid(user), "AADSTS700082")

    def expire_access_tokens(self, user: str | None = None) -> int:
        return self.identity.expire_access_tokens(self._uid(user) if user else None)

    def _uid(self, user: str) -> str:
        return self.store.mailbox(user).id

    # -- calendars and events ("as the user would") ----------------------------------
    def create_calendar(self, user: str, name: str, color: str = "auto") -> dict[str, Any]:
        mb = self.store.mailbox(user)
        return self.store.render_calendar(mb, self.store.create_calendar(mb, name, color))

    def update_calendar(self, user: str, calendar_id: str, **fields: Any) -> dict[str, Any]:
        mb = self.store.mailbox(user)
        return self.store.render_calendar(mb, self.store.update_calendar(mb, calendar_id, **fields))

    def delete_calendar(self, user: str, calendar_id: str) -> None:
        self.store.delete_calendar(self.store.mailbox(user), calendar_id)

    def default_calendar_id(self, user: str) -> str:
        return self.store.mailbox(user).default_calendar().id

    def create_event(self, user: str, calendar_id: str | None = None, **fields: Any) -> dict[str, Any]:
        mb = self.store.mailbox(user)
        ev = self.store.create_event(mb, calendar_id, fields)
        return render(ev, None, self.base_url)

    def create_events(self, user: str, bodies: list[dict[str, Any]], calendar_id: str | None = None) -> list[str]:
        """Bulk seeding (one lock acquisition): ids of the created events."""
        mb = self.store.mailbox(user)
        with self.store.lock:
            return [self.store.create_event(mb, calendar_id, b).id for b in bodies]

    def update_event(self, user: str, event_id: str, **fields: Any) -> dict[str, Any]:
        mb = self.store.mailbox(user)
        with self.store.lock:
            ev, key = self.store.update_event(mb, event_id, fields)
            from .events import find_instance
            return render(ev, None, self.base_url, find_instance(ev, key) if key else None)

    def delete_event(self, user: str, event_id: str) -> None:
        self.store.delete_event(self.store.mailbox(user), event_id)

    def cancel_event(self, user: str, event_id: str, comment: str = "") -> None:
        self.store.cancel_event(self.store.mailbox(user), event_id, comment)

    def move_event(self, user: str, event_id: str, to_calendar_id: str, immutable_ids: bool = False) -> dict:
        mb = self.store.mailbox(user)
        return render(self.store.move_event(mb, event_id, to_calendar_id, immutable_ids), None, self.base_url)

    def send_mail(self, user: str, message: dict[str, Any], save_to_sent_items: bool = True) -> None:
        from .mail import send_mail
        send_mail(self.store, self.store.mailbox(user), {"message": message,
                                                         "saveToSentItems": save_to_sent_items})

    # -- sync state, subscriptions -----------------------------------------------------
    def invalidate_delta_tokens(self, user: str | None = None) -> int:
        return self.graph.delta_tokens.invalidate(self._uid(user) if user else None)

    def remove_subscription(self, subscription_id: str) -> None:
        self.subscriptions.lifecycle(subscription_id, "subscriptionRemoved")

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        self.subscriptions.lifecycle(subscription_id, event)

    def expire_subscription(self, subscription_id: str) -> None:
        self.subscriptions.expire(subscription_id)

    def list_subscriptions(self) -> list[dict[str, Any]]:
        return [s.render() for s in list(self.subscriptions.subs.values())]

    # -- observation -------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        with self._counter_lock:
            return dict(self._counters)

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the injected faults (`Faults.set`); returns them. `SimulatorProcess` has the same call."""
        return dict(self.faults.set(**settings).as_dict())

    def reset_counters(self) -> None:
        with self._counter_lock:
            self._counters.clear()

    def ground_truth(self, user: str, start: Any = None, end: Any = None) -> dict[str, Any]:
        from .util import parse_iso
        s = parse_iso(start) if isinstance(start, str) else start
        e = parse_iso(end) if isinstance(end, str) else end
        return self.store.ground_truth(self.store.mailbox(user), self.base_url, s, e)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        return list(self.delivery.records)

    def delivered_notifications(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every notification item that reached a receiver with a 2xx (flattened)."""
        return [it for rec in list(self.delivery.records) if rec.get("ok") and (url is None or rec["url"] == url)
                for it in rec["value"]]

    def flush_notifications(self, timeout: float = 5.0) -> bool:
        return self.delivery.flush(timeout)

    # -- request dispatch --------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._counter_lock:
            self._counters[key] = self._counters.get(key, 0) + 1

    def dispatch(self, req: Request, count_prefix: str = "") -> Response:
        rid = new_guid()
        crid = req.headers.get("client-request-id") or rid
        common = {"request-id": rid, "client-request-id": crid,
                  "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"graphsim","Slice":"E","Ring":"5"}}'}
        path = req.path
        try:
            if path.startswith("/v1.0/") or path == "/v1.0":
                try:
                    resp = self.graph.handle(req)
                except GraphError as err:
                    resp = Response.json(err.status, err.body(rid, crid), err.headers)
                    resp.template = f"{req.method} {_normalize(path)}"
            elif path.startswith("/_sim/"):
                resp = self.control.handle(req)
            else:
                resp = self._identity(req)
        except Exception:  # pragma: no cover - a simulator bug must still answer like a server
            log.error("graphsim internal error on %s %s\n%s", req.method, path, traceback.format_exc())
            resp = Response.json(500, {"error": {"code": "InternalServerError", "message":
                                                 traceback.format_exc(limit=3)}})
        if not path.startswith("/_sim/"):
            self._count(count_prefix + (resp.template or f"{req.method} {_normalize(path)}"))
        for k, v in common.items():
            resp.headers.setdefault(k, v)
        return resp

    def _identity(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if len(parts) < 2:
            return Response.json(404, {"error": "not_found"})
        tenant, rest = parts[0], "/".join(parts[1:])
        tpl = f"{req.method} /{{tenant}}/{rest}"
        if not self.identity.known_tenant(tenant):
            err = OAuthError("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                             "have the correct tenant ID and are signing into the correct cloud.")
            resp = Response.json(400, err.body())
        elif rest == "v2.0/.well-known/openid-configuration" and req.method == "GET":
            resp = Response.json(200, self.identity.openid_configuration(self.base_url, tenant))
        elif rest == "discovery/v2.0/keys" and req.method == "GET":
            resp = Response.json(200, self.identity.signer.jwks())
        elif rest == "oauth2/v2.0/authorize" and req.method in ("GET", "POST"):
            q = dict(req.query)
            if req.method == "POST":
                import urllib.parse
                q.update({k.lower(): v for k, v in urllib.parse.parse_qsl(req.body.decode())})
            status, headers, body = self.identity.authorize(tenant, q)
            resp = Response(status, body, headers)
        elif rest == "oauth2/v2.0/token" and req.method == "POST":
            import urllib.parse
            form = dict(urllib.parse.parse_qsl(req.body.decode(), keep_blank_values=True))
            try:
                token = self.identity.token(self.base_url, tenant, form, req.headers.get("authorization"))
                resp = Response(200, dumps(token), {"Content-Type": "application/json; charset=utf-8",
                                                   "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
            except OAuthError as err:
                resp = Response(err.status, dumps(err.body()), {"Content-Type": "application/json; charset=utf-8"})
        else:
            resp = Response.json(404, {"error": "not_found", "error_description": f"No route {req.path}"})
        resp.template = tpl
        return resp


def _normalize(path: str) -> str:
    segs = [("{id}" if _ID_SEG.search(s) else s) for s in path.split("/")]
    return "/".join(segs)


__all__ = ["GraphSimulator", "delta"]

"""/_sim/... JSON control API: the Python API over HTTP, for other processes (benchmarks, demos)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .util import GraphError
from .wire import Request, Response

if TYPE_CHECKING:
    from .simulator import GraphSimulator


class Control:
    def __init__(self, sim: GraphSimulator) -> None:
        self.sim = sim
        s = sim
        R = list[tuple[str, re.Pattern[str], Callable[[dict[str, Any], list[str]], Any]]]
        self.routes: R = []

        def r(method: str, pattern: str, fn: Callable[[dict[str, Any], list[str]], Any]) -> None:
            self.routes.append((method, re.compile("^/_sim/" + pattern + "$"), fn))

        r("GET", "info", lambda b, a: {"base_url": s.base_url, "graph_url": s.graph_url, "ca_file": s.ca_file,
                                       "authority_template": s.base_url + "/{tenant}"})
        r("POST", "reset", lambda b, a: s.reset())
        r("POST", "tenants", lambda b, a: {"tenant_id": s.create_tenant(b.get("tenant_id"), b.get("domain"))})
        r("POST", "apps", lambda b, a: dict(zip(("client_id", "client_secret"), s.register_app(
            b["tenant"], b.get("client_id"), b.get("client_secret"), b.get("redirect_uris"),
            b.get("application_permissions"), b.get("delegated_permissions")), strict=True)))
        r("POST", "users", lambda b, a: {"user_id": s.create_user(
            b["tenant"], b.get("display_name"), b.get("user_principal_name"), b.get("consent", True),
            b.get("user_id"), b.get("time_zone", "UTC"))})
        r("POST", "consent-user", lambda b, a: s.set_consent_user(b["tenant"], b["user_id"]))
        r("POST", "deny-consent", lambda b, a: s.deny_consent(bool(b.get("deny", True))))
        r("POST", "users/([^/]+)/calendars", lambda b, a: s.create_calendar(a[0], b["name"], b.get("color", "auto")))
        r("PATCH", "users/([^/]+)/calendars/([^/]+)", lambda b, a: s.update_calendar(a[0], a[1], **b))
        r("DELETE", "users/([^/]+)/calendars/([^/]+)", lambda b, a: s.delete_calendar(a[0], a[1]))
        r("POST", "users/([^/]+)/events", lambda b, a: s.create_event(a[0], **b))
        r("POST", "users/([^/]+)/events/bulk", lambda b, a: {"ids": s.create_events(
            a[0], b["events"], b.get("calendar_id"))})
        r("PATCH", "users/([^/]+)/events/([^/]+)", lambda b, a: s.update_event(a[0], a[1], **b))
        r("DELETE", "users/([^/]+)/events/([^/]+)", lambda b, a: s.delete_event(a[0], a[1]))
        r("POST", "users/([^/]+)/events/([^/]+)/cancel", lambda b, a: s.cancel_event(a[0], a[1],
                                                                                    b.get("comment", "")))
        r("POST", "users/([^/]+)/events/([^/]+)/move", lambda b, a: s.move_event(
            a[0], a[1], b["to_calendar_id"], bool(b.get("immutable_ids"))))
        r("POST", "users/([^/]+)/send-mail", lambda b, a: s.send_mail(a[0], b["message"],
                                                                      b.get("saveToSentItems", True)))
        r("POST", "users/([^/]+)/revoke-refresh-tokens", lambda b, a: {"revoked": s.revoke_refresh_tokens(
            a[0], b.get("code", "AADSTS50173"))})
        r("POST", "users/([^/]+)/expire-refresh-tokens", lambda b, a: {"expired": s.expire_refresh_tokens(a[0])})
        r("POST", "expire-access-tokens", lambda b, a: {"expired": s.expire_access_tokens(b.get("user"))})
        r("POST", "invalidate-delta-tokens", lambda b, a: {"invalidated": s.invalidate_delta_tokens(
            b.get("user"))})
        r("GET", "subscriptions", lambda b, a: {"value": s.list_subscriptions()})
        r("POST", "subscriptions/([^/]+)/remove", lambda b, a: s.remove_subscription(a[0]))
        r("POST", "subscriptions/([^/]+)/lifecycle", lambda b, a: s.send_lifecycle(a[0], b["event"]))
        r("POST", "subscriptions/([^/]+)/expire", lambda b, a: s.expire_subscription(a[0]))
        r("GET", "faults", lambda b, a: s.faults.as_dict())
        r("POST", "faults", lambda b, a: s.set_faults(**b))
        r("GET", "counters", lambda b, a: s.counters())
        r("POST", "counters/reset", lambda b, a: s.reset_counters())
        r("GET", "ground-truth/([^/]+)", lambda b, a: s.ground_truth(a[0], b.get("start"), b.get("end")))
        r("GET", "deliveries", lambda b, a: {"value": s.deliveries})
        r("POST", "flush", lambda b, a: {"flushed": s.flush_notifications(float(b.get("timeout", 5)))})

    def handle(self, req: Request) -> Response:
        for method, pattern, fn in self.routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                body = req.json() if req.body else dict(req.query)
                try:
                    result = fn(body if isinstance(body, dict) else {}, list(m.groups()))
                except GraphError as err:
                    return Response.json(err.status, err.body("control", None))
                except (KeyError, TypeError, ValueError) as exc:
                    return Response.json(400, {"error": {"code": "BadRequest", "message": repr(exc)}})
                return Response.json(200, {} if result is None else result)
        return Response.json(404, {"error": {"code": "NotFound", "message": f"no control route {req.path}"}})

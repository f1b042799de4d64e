"""Microsoft Graph v1.0 front door: authentication, permissions, throttling and resource routes.

Over 400 lines because it is the simulated surface's one route table: each route is a short handler
on `Graph` sharing one authentication, permission and throttling path, while the resource semantics
live in events.py, delta.py, mail.py and store.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import delta as delta_mod
from . import events as ev_mod
from . import mail, query, schedule, schema
from .identity import AccessToken
from .store import Mailbox
from .util import GraphError, new_guid, parse_iso
from .wire import Request, Response

if TYPE_CHECKING:
    from .simulator import GraphSimulator

READ = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic", "Calendars.Read.Shared",
        "Calendars.ReadWrite.Shared"}
WRITE = {"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"}
MAIL_READ = {"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic", "Mail.ReadBasic.All"}
MAIL_WRITE = {"Mail.ReadWrite"}
MAIL_SEND = {"Mail.Send"}
USER_SELF = {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
             "Directory.Read.All"}
USER_ALL = {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"}
ANY: set[str] = set()
UNSUPPORTED_DELTA = ("$select", "$expand", "$filter", "$orderby", "$search")


@dataclass
class Ctx:
    sim: GraphSimulator
    req: Request
    token: AccessToken
    mb: Mailbox | None = None
    prefix: str = ""          # "/me" or "/users/{as given}" for links

    @functools.cached_property
    def tz(self) -> str | None:
        """The Prefer outlook.timezone if it names a known zone (resolved once per request)."""
        name = self.req.prefer().get("outlook.timezone")
        if not name:
            return None
        from .timezones import zone
        try:
            zone(name)
        except GraphError:
            return None
        return name

    def link(self, rest: str) -> str:
        return f"{self.sim.graph_url}{self.prefix}/{rest}"


Handler = Callable[[Ctx, list[str]], Response]


def _segments(path: str) -> list[str]:
    out: list[str] = []
    for raw in path.strip("/").split("/"):
        seg = urllib.parse.unquote(raw)
        if seg.endswith("()"):      # function call syntax: delta(), supportedLanguages()
            seg = seg[:-2]
        m = re.fullmatch(r"(\w+)\('([^']*)'\)", seg)
        if m and not seg.lower().startswith("supportedtimezones"):
            out.extend([m.group(1), m.group(2)])
        else:
            out.append(seg)
    return out


def _match(pattern: tuple[str, ...], segs: list[str]) -> list[str] | None:
    if len(pattern) != len(segs):
        return None
    args = []
    for p, s in zip(pattern, segs, strict=True):
        if p == "*":
            args.append(s)
        elif p.endswith("("):
            if not s.lower().startswith(p.lower()):
                return None
            args.append(s)
        elif p.lower() != s.lower():
            return None
    return args


def _tpl(pattern: tuple[str, ...]) -> str:
    return "/".join("{id}" if p == "*" else (p + "...)" if p.endswith("(") else p) for p in pattern)


def page(ctx: Ctx, items: list[Any], render: Callable[[Any], dict], default: int = 10,
         extra: dict[str, Any] | None = None, context: str | None = None, entity: str | None = None) -> Response:
    """Collection paging with $top/$skip and Prefer odata.maxpagesize, as Outlook resources do.

    With `entity` (the v1.0 type of the items) $filter/$orderby/$count/$select are applied (or rejected);
    `render` then gives the full item and $select is applied here.
    """
    q = ctx.req.query
    count = None
    if entity is not None:
        query.check_select(q, entity)
        full = render
        if any(k in q for k in query.OPTIONS):
            rendered, count = query.apply([full(x) for x in items], q, entity)
            items, full = rendered, (lambda d: d)
        render = lambda x: _select(full(x), q)  # noqa: E731
    elif any(k in q for k in query.OPTIONS):
        raise GraphError(400, "BadRequest", "Query option '" + next(k for k in query.OPTIONS if k in q) +
                         "' is not allowed on this resource.")
    prefer = ctx.req.prefer()
    headers: dict[str, str] = {}
    try:
        size = int(q.get("$top") or prefer.get("odata.maxpagesize") or default)
        skip = int(q.get("$skip") or 0)
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid value for $top or $skip.") from None
    if size < 1:
        raise GraphError(400, "BadRequest", "Invalid value for $top.")
    size = min(size, 1000)
    applied = []
    if "odata.maxpagesize" in prefer and "$top" not in q:
        applied.append(f"odata.maxpagesize={size}")
    if ctx.tz:
        applied.append(f'outlook.timezone="{ctx.tz}"')
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    chunk = items[skip: skip + size]
    body: dict[str, Any] = {}
    if context:
        body["@odata.context"] = context
    if count is not None:
        body["@odata.count"] = count
    body["value"] = [render(x) for x in chunk]
    if skip + size < len(items):
        params = [(k, v) for k, v in urllib.parse.parse_qsl(ctx.req.raw_query, keep_blank_values=True)
                  if k.lower() not in ("$skip", "$top")]
        params += [("$top", str(size))] if "$top" in q else []
        params.append(("$skip", str(skip + size)))
        path = ctx.req.path
        body["@odata.nextLink"] = f"{ctx.sim.base_url}{path}?{urllib.parse.urlencode(params, safe='$:')}"
    if extra:
        body.update(extra)
    return Response.json(200, body, headers)


def _select(obj: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
    sel = q.get("$select")
    if not sel:
        return obj
    keep = {s.strip() for s in sel.split(",")} | {"id", "@odata.etag"}
    return {k: v for k, v in obj.items() if k in keep}


def _window(q: dict[str, str]) -> tuple[dt.datetime, dt.datetime]:
    s, e = q.get("startdatetime"), q.get("enddatetime")
    if not s or not e:
        raise GraphError(400, "ErrorInvalidParameter", "This request requires a time window specified by the "
                         "query string parameters StartDateTime and EndDateTime.")
    try:
        return parse_iso(s), parse_iso(e)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'StartDateTime' or 'EndDateTime' is not "
                         "a valid date/time.") from None


def _unauthorized(message: str) -> GraphError:
    """401 with the challenge Graph sends (clients read the authorization_uri from it)."""
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"')})


class Graph:
    """Routes /v1.0 requests; every error leaves in the OData envelope."""

    def __init__(self, sim: GraphSimulator) -> None:
        self.sim = sim
        self.delta_tokens = delta_mod.DeltaTokens()
        m: list[tuple[str, tuple[str, ...], Handler, set[str]]] = []

        def r(method: str, path: str, fn: Handler, perm: set[str]) -> None:
            m.append((method, tuple(p for p in path.split("/") if p) if path else (), fn, perm))

        r("GET", "", self.get_user, USER_SELF)
        for base in ("calendars/*", "calendar"):
            r("GET", base, self.get_calendar, READ)
            r("PATCH", base, self.patch_calendar, WRITE)
            r("GET", f"{base}/events", self.list_events, READ)
            r("POST", f"{base}/events", self.create_event, WRITE)
            r("GET", f"{base}/calendarView", self.calendar_view, READ)
            r("GET", f"{base}/calendarView/delta", self.calendar_view_delta_other, READ)
            r("GET", f"{base}/events/*", self._in_cal(self.get_event), READ)
            r("PATCH", f"{base}/events/*", self._in_cal(self.patch_event), WRITE)
            r("DELETE", f"{base}/events/*", self._in_cal(self.delete_event), WRITE)
            r("POST", f"{base}/events/*/cancel", self._in_cal(self.cancel_event), WRITE)
        r("DELETE", "calendars/*", self.delete_calendar, WRITE)
        r("GET", "calendars", self.list_calendars, READ)
        r("POST", "calendars", self.create_calendar, WRITE)
        r("GET", "events", self.list_events, READ)
        r("POST", "events", self.create_event, WRITE)
        r("GET", "events/*", self.get_event, READ)
        r("PATCH", "events/*", self.patch_event, WRITE)
        r("DELETE", "events/*", self.delete_event, WRITE)
        r("POST", "events/*/cancel", self.cancel_event, WRITE)
        r("GET", "events/*/instances", self.instances, READ)
        r("GET", "calendarView", self.calendar_view, READ)
        r("GET", "calendarView/delta", self.calendar_view_delta, READ)
        r("POST", "calendar/getSchedule", self.get_schedule, READ)
        r("GET", "outlook/supportedTimeZones", self.supported_time_zones, ANY)
        r("GET", "outlook/supportedTimeZones(", self.supported_time_zones, ANY)
        r("GET", "outlook/supportedLanguages", self.supported_languages, ANY)
        r("GET", "mailFolders", self.list_folders, MAIL_READ)
        r("POST", "mailFolders", self.create_folder, MAIL_WRITE)
        r("GET", "mailFolders/*", self.get_folder, MAIL_READ)
        r("DELETE", "mailFolders/*", self.delete_folder, MAIL_WRITE)
        r("GET", "mailFolders/*/childFolders", self.list_child_folders, MAIL_READ)
        r("POST", "mailFolders/*/childFolders", self.create_child_folder, MAIL_WRITE)
        r("GET", "mailFolders/*/messages", self.list_messages, MAIL_READ)
        r("GET", "mailFolders/*/messages/delta", self.messages_delta, MAIL_READ)
        r("GET", "messages", self.list_messages, MAIL_READ)
        r("GET", "messages/*", self.get_message, MAIL_READ)
        r("PATCH", "messages/*", self.patch_message, MAIL_WRITE)
        r("DELETE", "messages/*", self.delete_message, MAIL_WRITE)
        r("GET", "messages/*/$value", self.get_message_mime, MAIL_READ)
        r("POST", "sendMail", self.send_mail, MAIL_SEND)
        self.routes = m

    # -- front door ----------------------------------------------------------
    def authenticate(self, req: Request) -> AccessToken:
        auth = req.headers.get("authorization", "")
        if not auth:
            raise _unauthorized("Access token is empty.")
        if not auth.lower().startswith("bearer "):
            raise _unauthorized("Access token validation failure.")
        tok = self.sim.identity.lookup(auth[7:].strip())
        if tok is None:
            raise _unauthorized("IDX14100: JWT is not well formed, there are no dots (.) or the token is not "
                                "issued by this service." if "." not in auth else
                                "Access token validation failure. Invalid audience.")
        if tok.expires < time.time():
            raise _unauthorized("Lifetime validation failed, the token is expired.")
        return tok

    def handle(self, req: Request) -> Response:
        segs = _segments(req.path)[1:]   # drop "v1.0"
        tpl = f"{req.method} /v1.0/" + "/".join(segs)
        if not segs:
            raise GraphError(400, "BadRequest", "Invalid request.")
        head = segs[0].lower()
        if head == "$batch":
            if req.method != "POST":
                raise GraphError(405, "BadRequest", "Method not allowed.")
            from .batch import run_batch
            resp = run_batch(self.sim, req)
            resp.template = "POST /v1.0/$batch"
            return resp
        token = self.authenticate(req)
        if head == "subscriptions":
            resp = self._subscriptions(req, token, segs[1:])
            resp.template = f"{req.method} /v1.0/subscriptions" + "".join(
                "/{id}" if i == 0 else f"/{s}" for i, s in enumerate(segs[1:]))
            return resp
        if head == "me":
            if token.kind != "delegated":
                raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication "
                                 "flow.")
            mb = self.sim.store.mailboxes.get(token.user_id or "")
            if mb is None:
                raise GraphError(404, "ErrorInvalidUser", "The requested user is invalid.")
            prefix, tpl_prefix, rest = "/me", "/v1.0/me", segs[1:]
        elif head == "users" and len(segs) >= 2:
            try:
                mb = self.sim.store.mailbox(segs[1])
            except GraphError:
                if len(segs) == 2:
                    raise GraphError(404, "Request_ResourceNotFound", f"Resource '{segs[1]}' does not exist or "
                                     "one of its queried reference-property objects are not present.") from None
                raise
            if mb.tenant_id != token.tenant_id:
                raise GraphError(404, "ErrorInvalidUser", f"The requested user '{segs[1]}' is invalid.")
            prefix, tpl_prefix, rest = f"/users/{segs[1]}", "/v1.0/users/{id}", segs[2:]
        elif head == "users":
            return self._list_users(req, token)
        else:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segs[0]}'.")
        ctx = Ctx(self.sim, req, token, mb, prefix)
        for method, pattern, fn, perm in self.routes:
            args = _match(pattern, rest)
            if args is None:
                continue
            if method != req.method:
                continue
            tpl = f"{req.method} {tpl_prefix}" + ("/" + _tpl(pattern) if pattern else "")
            self._authorize(ctx, perm, head == "users" and not rest)
            with self.sim.throttle.slot(token.client_id, mb.id):
                self._faults()
                resp = fn(ctx, args)
            resp.template = tpl
            return resp
        if any(_match(p, rest) is not None for _, p, _, _ in self.routes):
            raise GraphError(405, "ErrorInvalidRequest", "The OData request is not supported.")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1] if rest else head}'.")

    def _faults(self) -> None:
        f = self.sim.faults
        if f.latency_ms:
            time.sleep(f.latency_ms / 1000)
        if f.roll(f.rate_429):
            raise GraphError(429, "TooManyRequests", "Too many requests.",
                             {"Retry-After": str(f.retry_after).rstrip("0").rstrip(".")})
        if f.roll(f.rate_503):
            raise GraphError(503, "ServiceUnavailable", "The service is temporarily unavailable.",
                             {"Retry-After": str(f.retry_after).rstrip("0").rstrip(".")})

    def _authorize(self, ctx: Ctx, perm: set[str], directory: bool) -> None:
        tok, mb = ctx.token, ctx.mb
        assert mb is not None
        if not perm:
            return
        if tok.kind == "delegated":
            if mb.id != tok.user_id:
                if directory and tok.scopes & USER_ALL:
                    return
                raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            if tok.scopes & perm:
                return
        else:
            granted = tok.roles
            if perm is USER_SELF:
                perm = USER_ALL
            if granted & perm:
                return
        if perm in (USER_SELF, USER_ALL):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                             "operation.")
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    # -- users -----------------------------------------------------------------
    def get_user(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        query.check_select(ctx.req.query, "user")
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users/$entity", **ctx.mb.user}
        return Response.json(200, _select(body, ctx.req.query))

    def _list_users(self, req: Request, token: AccessToken) -> Response:
        if not ((token.roles if token.kind == "app" else token.scopes) & USER_ALL):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                             "operation.")
        users = [mb.user for mb in self.sim.store.mailboxes.values() if mb.tenant_id == token.tenant_id]
        ctx = Ctx(self.sim, req, token, None, "")
        resp = page(ctx, users, dict, default=100, context=f"{self.sim.graph_url}/$metadata#users",
                    entity="user")
        resp.template = "GET /v1.0/users"
        return resp

    # -- calendars -----------------------------------------------------------
    def _cal(self, ctx: Ctx, args: list[str]) -> Any:
        assert ctx.mb is not None
        return self.sim.store.calendar(ctx.mb, args[0] if args else None)

    def list_calendars(self, ctx: Ctx, args: list[str]) -> Response:
        mb = ctx.mb
        assert mb is not None
        cals = list(mb.calendars.values())
        return page(ctx, cals, lambda c: self.sim.store.render_calendar(mb, c),
                    context=f"{self.sim.graph_url}/$metadata#users('{mb.id}')/calendars", entity="calendar")

    def get_calendar(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        cal = self._cal(ctx, args)
        query.check_select(ctx.req.query, "calendar")
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/calendars/$entity",
                **self.sim.store.render_calendar(ctx.mb, cal)}
        return Response.json(200, _select(body, ctx.req.query))

    def create_calendar(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        body = schema.validate(ctx.req.json(), "calendar")
        cal = self.sim.store.create_calendar(ctx.mb, str(body.get("name") or ""), body.get("color") or "auto")
        return Response.json(201, self.sim.store.render_calendar(ctx.mb, cal))

    def patch_calendar(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        cal = self._cal(ctx, args)
        body = schema.validate(ctx.req.json(), "calendar")
        cal = self.sim.store.update_calendar(ctx.mb, cal.id, **{k: v for k, v in body.items()
                                                                 if k in ("name", "color", "hexColor")})
        return Response.json(200, self.sim.store.render_calendar(ctx.mb, cal))

    def delete_calendar(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        self.sim.store.delete_calendar(ctx.mb, args[0])
        return Response(204)

    # -- events ------------------------------------------------------------------
    def _render(self, ctx: Ctx, ev: ev_mod.Event, inst: ev_mod.Instance | None = None) -> dict[str, Any]:
        return ev_mod.render(ev, ctx.tz, self.sim.base_url, inst)

    def _tz_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"Preference-Applied": f'outlook.timezone="{ctx.tz}"'} if ctx.tz else {}

    def list_events(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        cal = self._cal(ctx, args)
        with self.sim.store.lock:
            evs = sorted(self.sim.store.events_in(ctx.mb, cal.id), key=lambda e: (e.created, e.id))
        return page(ctx, evs, lambda e: self._render(ctx, e), entity="event",
                    context=f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/events")

    def create_event(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        cal = self._cal(ctx, args)
        ev = self.sim.store.create_event(ctx.mb, cal.id, ctx.req.json())
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/events/$entity",
                **self._render(ctx, ev)}
        return Response.json(201, body, self._tz_headers(ctx))

    def _resolve(self, ctx: Ctx, item_id: str, cal_id: str | None = None) -> tuple[ev_mod.Event, str | None]:
        assert ctx.mb is not None
        ev, key = self.sim.store.resolve_event(ctx.mb, item_id)
        if cal_id is not None and ev.calendar_id != cal_id:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return ev, key

    def get_event(self, ctx: Ctx, args: list[str], cal_id: str | None = None) -> Response:
        with self.sim.store.lock:
            ev, key = self._resolve(ctx, args[-1], cal_id)
            inst = ev_mod.find_instance(ev, key) if key else None
            body = self._render(ctx, ev, inst)
        query.check_select(ctx.req.query, "event")
        assert ctx.mb is not None  # _resolve checked it
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/events/$entity", **body}
        return Response.json(200, _select(body, ctx.req.query), self._tz_headers(ctx))

    def _if_match(self, ctx: Ctx, ev: ev_mod.Event, key: str | None) -> None:
        """412 when If-Match names another version of the item (Exchange compares change keys)."""
        wanted = ctx.req.headers.get("if-match")
        if not wanted or wanted.strip() == "*":
            return
        exc = ev.exceptions.get(key) if key else None
        current = exc.change_key if exc is not None and exc.change_key else ev.change_key
        if wanted.strip() != f'W/"{current}"':
            raise GraphError(412, "ErrorIrresolvableConflict", "The send or update operation could not be "
                             "performed because the change key passed in the request does not match the "
                             "current change key for the item.")

    def patch_event(self, ctx: Ctx, args: list[str], cal_id: str | None = None) -> Response:
        assert ctx.mb is not None
        body = ctx.req.json()
        with self.sim.store.lock:
            self._if_match(ctx, *self._resolve(ctx, args[-1], cal_id))
            ev, key = self.sim.store.update_event(ctx.mb, args[-1], body)
            inst = ev_mod.find_instance(ev, key) if key else None
            out = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/events/$entity",
                   **self._render(ctx, ev, inst)}
        return Response.json(200, out, self._tz_headers(ctx))

    def delete_event(self, ctx: Ctx, args: list[str], cal_id: str | None = None) -> Response:
        assert ctx.mb is not None
        with self.sim.store.lock:
            self._if_match(ctx, *self._resolve(ctx, args[-1], cal_id))
            self.sim.store.delete_event(ctx.mb, args[-1])
        return Response(204)

    def cancel_event(self, ctx: Ctx, args: list[str], cal_id: str | None = None) -> Response:
        assert ctx.mb is not None
        body = schema.action(ctx.req.json(), "cancel")
        with self.sim.store.lock:
            self._resolve(ctx, args[-1], cal_id)
            self.sim.store.cancel_event(ctx.mb, args[-1], str(body.get("comment") or ""))
        return Response(202)

    def _in_cal(self, fn: Callable[..., Response]) -> Handler:
        """`fn` for /calendars/{id}/events/{id}...: the event must be in that calendar."""
        def wrapped(ctx: Ctx, args: list[str]) -> Response:
            cal = self._cal(ctx, args[:-1])
            return fn(ctx, args, cal.id)
        return wrapped

    def instances(self, ctx: Ctx, args: list[str]) -> Response:
        start, end = _window(ctx.req.query)
        with self.sim.store.lock:
            ev, key = self._resolve(ctx, args[0])
            if key is not None or not ev.is_master:
                raise GraphError(400, "ErrorInvalidRequest", "The specified event is not a recurring series "
                                 "master.")
            insts = sorted(ev_mod.instances(ev, start, end), key=lambda i: (i.start, i.id))
            rendered = [self._render(ctx, ev, i) for i in insts]
        return page(ctx, rendered, lambda d: d, entity="event",
                    context=f"{self.sim.graph_url}/$metadata#Collection(event)")

    def calendar_view(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        start, end = _window(ctx.req.query)
        cal = self._cal(ctx, args)
        with self.sim.store.lock:
            found: list[ev_mod.Instance] = []
            for ev in self.sim.store.events_in(ctx.mb, cal.id):
                found.extend(ev_mod.instances(ev, start, end))
            found.sort(key=lambda i: (i.start, i.id))
            rendered = [self._render(ctx, i.event, i) for i in found]
        return page(ctx, rendered, lambda d: d, entity="event",
                    context=f"{self.sim.graph_url}/$metadata#Collection(event)")

    # -- delta ---------------------------------------------------------------------
    def calendar_view_delta(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        return self._delta(ctx, ctx.mb.default_calendar().id, "calendarView/delta")

    def calendar_view_delta_other(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        if not self.sim.delta_other_calendars:
            raise GraphError(400, "BadRequest", "Resource not found for the segment 'delta'.")
        cal = self._cal(ctx, args)
        where = f"calendars/{args[0]}/calendarView/delta" if args else "calendar/calendarView/delta"
        return self._delta(ctx, cal.id, where)

    def _delta(self, ctx: Ctx, calendar_id: str, where: str) -> Response:
        mb = ctx.mb
        assert mb is not None
        q = ctx.req.query
        for bad in UNSUPPORTED_DELTA:
            if bad in q:
                raise GraphError(400, "ErrorInvalidUrlQuery", f"The following parameters are not supported with "
                                 f"change tracking over the 'CalendarView' resource: '{bad}'.")
        prefer = ctx.req.prefer()
        try:
            size = int(prefer.get("odata.maxpagesize") or q.get("$top") or 10)
        except ValueError:
            size = 10
        size = max(1, min(size, 1000))
        tokens = self.delta_tokens
        with self.sim.store.lock:
            if "$skiptoken" in q:
                rnd = tokens.get(q["$skiptoken"])
                if not isinstance(rnd, delta_mod.Round) or rnd.user_id != mb.id:
                    raise delta_mod.sync_state_not_found()
            elif "$deltatoken" in q:
                state = tokens.get(q["$deltatoken"])
                if not isinstance(state, delta_mod.SyncState) or state.user_id != mb.id or \
                        state.calendar_id != calendar_id:
                    raise delta_mod.sync_state_not_found()
                rnd = delta_mod.next_round(mb, state, size)
            else:
                start, end = _window(q)
                rnd = delta_mod.initial_round(mb, calendar_id, start, end, size)
            chunk = rnd.items[rnd.offset: rnd.offset + rnd.page_size]
            value = [{"@odata.type": delta_mod.EVENT_TYPE, **self._render(ctx, ev, inst)} if kind == "full"
                     else delta_mod.removed_item(ev) for kind, ev, inst in chunk]
            rest = delta_mod.Round(rnd.user_id, rnd.items, rnd.offset + rnd.page_size, size, rnd.final)
        body: dict[str, Any] = {"@odata.context": f"{self.sim.graph_url}/$metadata#Collection(event)"}
        if rest.offset < len(rest.items):
            body["@odata.nextLink"] = ctx.link(f"{where}?$skiptoken={tokens.put(rest)}")
        else:
            body["@odata.deltaLink"] = ctx.link(f"{where}?$deltatoken={tokens.put(rnd.final)}")
        body["value"] = value
        applied = [f"odata.maxpagesize={size}"] if "odata.maxpagesize" in prefer else []
        if ctx.tz:
            applied.append(f'outlook.timezone="{ctx.tz}"')
        return Response.json(200, body, {"Preference-Applied": ", ".join(applied)} if applied else {})

    # -- schedule / outlook ----------------------------------------------------
    def get_schedule(self, ctx: Ctx, args: list[str]) -> Response:
        return Response.json(200, schedule.get_schedule(self.sim, schema.action(ctx.req.json(), "getSchedule"),
                                                        ctx.tz))

    def supported_time_zones(self, ctx: Ctx, args: list[str]) -> Response:
        iana = "iana" in (args[0].lower() if args else "")
        return Response.json(200, schedule.supported_time_zones(self.sim.graph_url, iana))

    def supported_languages(self, ctx: Ctx, args: list[str]) -> Response:
        return Response.json(200, schedule.supported_languages(self.sim.graph_url))

    # -- mail --------------------------------------------------------------------
    def list_folders(self, ctx: Ctx, args: list[str]) -> Response:
        mb = ctx.mb
        assert mb is not None
        roots = [f for f in mb.folders.values() if f.parent_id is None]
        return page(ctx, roots, lambda f: mail.render_folder(mb, f), entity="mailFolder",
                    context=f"{self.sim.graph_url}/$metadata#users('{mb.id}')/mailFolders")

    def get_folder(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        query.check_select(ctx.req.query, "mailFolder")
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/mailFolders/$entity",
                **mail.render_folder(ctx.mb, mail.folder(ctx.mb, args[0]))}
        return Response.json(200, _select(body, ctx.req.query))

    def create_folder(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        body = schema.validate(ctx.req.json(), "mailFolder")
        f = mail.create_folder(self.sim.store, ctx.mb, None, str(body.get("displayName") or ""))
        return Response.json(201, mail.render_folder(ctx.mb, f))

    def create_child_folder(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        parent = mail.folder(ctx.mb, args[0])
        body = schema.validate(ctx.req.json(), "mailFolder")
        f = mail.create_folder(self.sim.store, ctx.mb, parent, str(body.get("displayName") or ""))
        return Response.json(201, mail.render_folder(ctx.mb, f))

    def delete_folder(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        mail.delete_folder(self.sim.store, ctx.mb, mail.folder(ctx.mb, args[0]))
        return Response(204)

    def list_child_folders(self, ctx: Ctx, args: list[str]) -> Response:
        mb = ctx.mb
        assert mb is not None
        parent = mail.folder(mb, args[0])
        kids = [f for f in mb.folders.values() if f.parent_id == parent.id]
        return page(ctx, kids, lambda f: mail.render_folder(mb, f), entity="mailFolder",
                    context=f"{self.sim.graph_url}/$metadata#users('{mb.id}')/mailFolders('{parent.id}')/childFolders")

    def list_messages(self, ctx: Ctx, args: list[str]) -> Response:
        mb = ctx.mb
        assert mb is not None
        q = ctx.req.query
        if "$search" in q and "$filter" in q:
            raise GraphError(400, "ErrorInvalidUrlQuery", "The query parameter '$filter' is not supported with "
                             "'$search'.")
        with self.sim.store.lock:
            msgs = list(mb.messages.values())
            if args:
                fid = mail.folder(mb, args[0]).id
                msgs = [m for m in msgs if m["parentFolderId"] == fid]
            if "$search" in q:
                term = q["$search"].strip('"').lower()
                msgs = [m for m in msgs if term in m["subject"].lower() or term in m["body"]["content"].lower()]
            msgs.sort(key=lambda m: m["receivedDateTime"], reverse=True)
        return page(ctx, msgs, mail.public, entity="message",
                    context=f"{self.sim.graph_url}/$metadata#users('{mb.id}')/messages")

    def get_message(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        query.check_select(ctx.req.query, "message")
        body = {"@odata.context": f"{self.sim.graph_url}/$metadata#users('{ctx.mb.id}')/messages/$entity",
                **mail.public(mail.message(ctx.mb, args[0]))}
        return Response.json(200, _select(body, ctx.req.query))

    def patch_message(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        body = schema.validate(ctx.req.json(), "message")
        with self.sim.store.lock:
            m = mail.message(ctx.mb, args[0])
            for k in ("isRead", "categories", "importance", "subject", "flag"):
                if k in body:
                    m[k] = body[k]
            m["changeKey"] = ev_mod.change_key()
            m["@odata.etag"] = f'W/"{m["changeKey"]}"'
            self.sim.store.log(ctx.mb, "message", m["id"], m["parentFolderId"], "updated")
        return Response.json(200, mail.public(m))

    def delete_message(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        mail.delete_message(self.sim.store, ctx.mb, args[0])
        return Response(204)

    def get_message_mime(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        return Response(200, mail.mime(mail.message(ctx.mb, args[0])), {"Content-Type": "text/plain"})

    def send_mail(self, ctx: Ctx, args: list[str]) -> Response:
        assert ctx.mb is not None
        mail.send_mail(self.sim.store, ctx.mb, schema.action(ctx.req.json(), "sendMail"))
        return Response(202)

    def messages_delta(self, ctx: Ctx, args: list[str]) -> Response:
        mb = ctx.mb
        assert mb is not None
        q = ctx.req.query
        tokens = self.delta_tokens
        size = int(ctx.req.prefer().get("odata.maxpagesize") or q.get("$top") or 10)
        sel = q.get("$select", "").split(",") if q.get("$select") else None
        with self.sim.store.lock:
            fid = mail.folder(mb, args[0]).id
            if "$skiptoken" in q or "$deltatoken" in q:
                st = tokens.get(q.get("$skiptoken") or q.get("$deltatoken") or "")
                if not isinstance(st, MailDelta) or st.user_id != mb.id or st.folder_id != fid:
                    raise delta_mod.sync_state_not_found()
                if "$deltatoken" in q:
                    ids: dict[str, None] = {}
                    for ch in mb.changes_since(st.seq):
                        if ch.kind == "message" and ch.container_id == fid:
                            ids.pop(ch.item_id, None)
                            ids[ch.item_id] = None
                    st = MailDelta(mb.id, fid, mb.seq, list(ids), 0, sel)
            else:
                msgs = sorted((m for m in mb.messages.values() if m["parentFolderId"] == fid),
                              key=lambda m: m["receivedDateTime"], reverse=True)
                st = MailDelta(mb.id, fid, mb.seq, [m["id"] for m in msgs], 0, sel)
            chunk = st.ids[st.offset: st.offset + size]
            value = []
            for mid in chunk:
                m = mb.messages.get(mid)
                if m is not None and m["parentFolderId"] == fid:
                    value.append(mail.public(m, st.select))
                else:
                    value.append({"@odata.type": "#microsoft.graph.message", "id": mid,
                                  "@removed": {"reason": "deleted"}})
        nxt = MailDelta(mb.id, fid, st.seq, st.ids, st.offset + size, st.select)
        where = f"mailFolders/{args[0]}/messages/delta"
        body: dict[str, Any] = {"@odata.context": f"{self.sim.graph_url}/$metadata#Collection(message)",
                                "value": value}
        if nxt.offset < len(nxt.ids):
            body["@odata.nextLink"] = ctx.link(f"{where}?$skiptoken={tokens.put(nxt)}")
        else:
            body["@odata.deltaLink"] = ctx.link(
                f"{where}?$deltatoken={tokens.put(MailDelta(mb.id, fid, st.seq, [], 0, st.select))}")
        return Response.json(200, body)

    # -- subscriptions -------------------------------------------------------------
    def _subscriptions(self, req: Request, token: AccessToken, rest: list[str]) -> Response:
        subs = self.sim.subscriptions
        ctx = Ctx(self.sim, req, token)
        if not rest and req.method == "POST":
            def check(kind: str) -> None:
                perm = READ if kind == "event" else MAIL_READ
                granted = token.scopes if token.kind == "delegated" else token.roles
                if not granted & perm:
                    raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: "
                                     "Forbidden; Reason: Access is denied. Check credentials and try again.]")
            immutable = req.prefer().get("idtype", "").lower() == "immutableid"
            sub = subs.create(req.json(), token.client_id, token.tenant_id,
                              token.user_id if token.kind == "delegated" else None, check, immutable)
            body = {"@odata.context": f"{self.sim.graph_url}/$metadata#subscriptions/$entity", **sub.render()}
            return Response.json(201, body)
        if not rest and req.method == "GET":
            items = subs.list_for(token.client_id, token.user_id if token.kind == "delegated" else None)
            return page(ctx, items, lambda s: s.render(with_state=False), default=100,
                        context=f"{self.sim.graph_url}/$metadata#subscriptions")
        if len(rest) == 1 and req.method == "GET":
            return Response.json(200, subs.get(rest[0], token.client_id).render())
        if len(rest) == 1 and req.method == "PATCH":
            return Response.json(200, subs.renew(rest[0], token.client_id, req.json()).render())
        if len(rest) == 1 and req.method == "DELETE":
            subs.delete(rest[0], token.client_id)
            return Response(204)
        if len(rest) == 2 and rest[1].lower() == "reauthorize" and req.method == "POST":
            subs.get(rest[0], token.client_id)
            return Response(204)
        raise GraphError(400, "BadRequest", "Unsupported subscriptions request.")


@dataclass
class MailDelta:
    user_id: str
    folder_id: str
    seq: int
    ids: list[str]
    offset: int
    select: list[str] | None


def request_id() -> str:
    return new_guid()

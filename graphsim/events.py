"""Event records: input validation, recurrence instances and Graph JSON rendering."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field
from typing import Any

from . import recurrence, schema, timezones
from .util import UTC, GraphError, b64url, b64url_decode, iso_z, new_guid, new_item_id, now

OCC_PREFIX = "AAMkOcc"
# Fields a client may set; everything else in a PATCH body is read-only and ignored.
WRITABLE = {
    "subject", "body", "importance", "sensitivity", "showAs", "categories", "isReminderOn",
    "reminderMinutesBeforeStart", "location", "locations", "attendees", "isOnlineMeeting",
    "onlineMeetingProvider", "allowNewTimeProposals", "responseRequested", "hideAttendees",
    "isDraft", "start", "end", "isAllDay", "recurrence", "organizer", "transactionId",
}
# Writable fields stored as sent; start/end/isAllDay/recurrence are parsed into Times / recurrence.
PLAIN_FIELDS = WRITABLE - {"start", "end", "isAllDay", "recurrence"}
NO_RESPONSE = {"response": "none", "time": "0001-01-01T00:00:00Z"}
HTML_HEAD = ('<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
             '<meta content="text/html; charset=us-ascii">\r\n</head><body>')
DEFAULT_LOCATION = {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                    "address": {}, "coordinates": {}}


def change_key() -> str:
    return b64url(hashlib.sha1(new_guid().encode(), usedforsecurity=False).digest()[:16] + b"\0\0\0\0")


def occurrence_id(master_id: str, key: str) -> str:
    """Occurrence ids are distinct per occurrence yet derivable from the series (like Outlook's)."""
    return OCC_PREFIX + b64url(f"{master_id}|{key}".encode())


def parse_occurrence_id(item_id: str) -> tuple[str, str] | None:
    if not item_id.startswith(OCC_PREFIX):
        return None
    try:
        master, key = b64url_decode(item_id[len(OCC_PREFIX):]).decode().split("|", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return master, key


def body_preview(body: dict | None) -> str:
    text = (body or {}).get("content") or ""
    if (body or {}).get("contentType", "").lower() == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())[:255]


@dataclass
class Times:
    """Start/end of an event; all-day events are floating dates kept at UTC midnight."""

    start: dt.datetime
    end: dt.datetime
    start_tz: str
    end_tz: str
    all_day: bool


def parse_times(start: dict, end: dict, all_day: bool) -> Times:
    s = timezones.to_utc(start, "start")
    e = timezones.to_utc(end, "end")
    stz = start.get("timeZone") or "UTC"
    etz = end.get("timeZone") or stz
    if all_day:
        ls = s.astimezone(timezones.zone(stz))
        le = e.astimezone(timezones.zone(etz))
        if ls.time() != dt.time(0) or le.time() != dt.time(0) or le.date() <= ls.date():
            raise GraphError(400, "ErrorInvalidRequest",
                             "Your request can't be completed. If the event is an all-day event, "
                             "the start and end time must be midnight and span at least one day.")
        s = dt.datetime.combine(ls.date(), dt.time(0), UTC)
        e = dt.datetime.combine(le.date(), dt.time(0), UTC)
    elif e < s:
        raise GraphError(400, "ErrorInvalidRequest",
                         "Your request can't be completed. The end time must be after the start time.")
    return Times(s, e, stz, etz, all_day)


@dataclass
class Exception_:
    """A modified occurrence of a series (type 'exception')."""

    id: str
    overrides: dict[str, Any]
    times: Times | None
    modified: dt.datetime
    change_key: str


@dataclass
class Event:
    id: str
    user_id: str
    calendar_id: str
    fields: dict[str, Any]
    times: Times
    created: dt.datetime
    modified: dt.datetime
    change_key: str
    ical_uid: str
    uid: str
    recurrence: dict | None = None
    exceptions: dict[str, Exception_] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    @property
    def is_master(self) -> bool:
        return self.recurrence is not None

    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def touch(self) -> None:
        self.modified = now()
        self.change_key = change_key()


@dataclass
class Instance:
    """One calendar-view item: a single event, an occurrence or an exception."""

    id: str
    kind: str
    event: Event
    start: dt.datetime
    end: dt.datetime
    key: str | None = None
    exception: Exception_ | None = None


def build_event(user: dict, calendar_id: str, body: dict[str, Any]) -> Event:
    """Create an event record from a POST body, applying Graph's defaults."""
    body = normalize(schema.validate(body, "event"))
    if "start" not in body or "end" not in body:
        raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. Start and End are "
                         "required.")
    times = parse_times(body["start"], body["end"], bool(body.get("isAllDay")))
    organizer = body.get("organizer") or {"emailAddress": {"name": user["displayName"],
                                                           "address": user["mail"]}}
    is_organizer = (organizer.get("emailAddress", {}).get("address", "").lower() == user["mail"].lower())
    f: dict[str, Any] = {
        "categories": [], "reminderMinutesBeforeStart": 15, "isReminderOn": True, "subject": "",
        "importance": "normal", "sensitivity": "normal", "isCancelled": False, "responseRequested": True,
        "showAs": "busy", "onlineMeetingUrl": None, "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown", "allowNewTimeProposals": True, "isDraft": False,
        "hideAttendees": False, "transactionId": None,
        "body": {"contentType": "html", "content": ""}, "location": dict(DEFAULT_LOCATION),
        "locations": [], "attendees": [], "onlineMeeting": None,
    }
    for k, v in body.items():
        if k in PLAIN_FIELDS:
            f[k] = copy.deepcopy(v)
    if isinstance(f.get("location"), dict):
        f["location"] = {**DEFAULT_LOCATION, **f["location"]}
    if not f["locations"] and f["location"].get("displayName"):
        f["locations"] = [f["location"]]
    f["organizer"] = organizer
    f["isOrganizer"] = is_organizer
    f["responseStatus"] = body.get("responseStatus") or (
        {"response": "organizer", "time": "0001-01-01T00:00:00Z"} if is_organizer
        else {"response": "notResponded", "time": "0001-01-01T00:00:00Z"})
    t = now()
    eid = new_item_id()
    uid = "040000008200E00074C5B7101A82E008" + hashlib.sha1(eid.encode(), usedforsecurity=False).hexdigest()
    ev = Event(id=eid, user_id=user["id"], calendar_id=calendar_id, fields=f, times=times, created=t,
               modified=t, change_key=change_key(), ical_uid=uid.upper(), uid=uid.upper())
    if body.get("recurrence"):
        local_start = times.start.astimezone(timezones.zone(times.start_tz)).date()
        ev.recurrence = recurrence.normalize(body["recurrence"], local_start, times.start_tz)
    return ev


def normalize(body: dict[str, Any]) -> dict[str, Any]:
    """What Exchange stores for a validated body: HTML wrapped in a document, attendee status, location ids."""
    b = body.get("body")
    if isinstance(b, dict) and b.get("contentType") == "html" and isinstance(b.get("content"), str) \
            and not b["content"].lstrip().lower().startswith("<html"):
        body["body"] = {**b, "content": HTML_HEAD + b["content"] + "</body></html>"}
    if isinstance(body.get("attendees"), list):
        body["attendees"] = [{"type": "required", **a, "status": a.get("status") or dict(NO_RESPONSE)}
                             if isinstance(a, dict) else a for a in body["attendees"]]
    for key in ("location",):
        if isinstance(body.get(key), dict):
            body[key] = _location(body[key])
    if isinstance(body.get("locations"), list):
        body["locations"] = [_location(loc) if isinstance(loc, dict) else loc for loc in body["locations"]]
    return body


def _location(loc: dict[str, Any]) -> dict[str, Any]:
    out = {**DEFAULT_LOCATION, **loc}
    if out.get("displayName") and not loc.get("uniqueId"):
        out["uniqueId"] = out["displayName"]
        out["uniqueIdType"] = loc.get("uniqueIdType") or "private"
    return out


def apply_patch(ev: Event, body: dict[str, Any]) -> None:
    """PATCH semantics: listed writable properties replace the stored ones."""
    if "start" in body or "end" in body or "isAllDay" in body:
        cur = render_times(ev.times, None)
        start = body.get("start") or {"dateTime": cur[0]["dateTime"], "timeZone": "UTC"}
        end = body.get("end") or {"dateTime": cur[1]["dateTime"], "timeZone": "UTC"}
        all_day = bool(body.get("isAllDay", ev.times.all_day))
        new = parse_times(start, end, all_day)
        if "start" not in body:
            new.start_tz = ev.times.start_tz
        if "end" not in body:
            new.end_tz = ev.times.end_tz
        ev.times = new
    for k, v in body.items():
        if k in PLAIN_FIELDS:
            ev.fields[k] = copy.deepcopy(v)
            if k == "location" and isinstance(v, dict):
                ev.fields["location"] = {**DEFAULT_LOCATION, **v}
                ev.fields["locations"] = [ev.fields["location"]] if v.get("displayName") else []
    if "recurrence" in body:
        if body["recurrence"] is None:
            ev.recurrence = None
            ev.exceptions.clear()
            ev.cancelled.clear()
        else:
            local_start = ev.times.start.astimezone(timezones.zone(ev.times.start_tz)).date()
            ev.recurrence = recurrence.normalize(body["recurrence"], local_start, ev.times.start_tz)
            ev.exceptions.clear()
            ev.cancelled.clear()
    ev.touch()


def _occ_start(ev: Event, day: dt.date) -> dt.datetime:
    if ev.times.all_day:
        return dt.datetime.combine(day, dt.time(0), UTC)
    tz = timezones.zone(ev.recurrence["range"]["recurrenceTimeZone"] if ev.recurrence else ev.times.start_tz)
    local = ev.times.start.astimezone(tz)
    return dt.datetime.combine(day, local.time(), tz).astimezone(UTC)


def instances(ev: Event, win_start: dt.datetime | None, win_end: dt.datetime | None) -> list[Instance]:
    """Calendar-view items of `ev` overlapping [win_start, win_end) (all items when no window)."""
    def overlaps(s: dt.datetime, e: dt.datetime) -> bool:
        if win_start is None or win_end is None:
            return True
        return s < win_end and (e > win_start or (s == e and s >= win_start))

    if not ev.is_master:
        return [Instance(ev.id, "singleInstance", ev, ev.times.start, ev.times.end)] if overlaps(
            ev.times.start, ev.times.end) else []
    out: list[Instance] = []
    duration = ev.times.end - ev.times.start
    until = (win_end.date() + dt.timedelta(days=2)) if win_end else dt.date.today() + dt.timedelta(days=730)
    lower = (win_start - duration - dt.timedelta(days=2)).date() if win_start else None
    seen: set[str] = set()
    assert ev.recurrence is not None  # a master carries its pattern
    for day in recurrence.dates(ev.recurrence, until):
        key = day.strftime("%Y%m%d")
        seen.add(key)
        if key in ev.cancelled or (lower and day < lower and key not in ev.exceptions):
            continue
        inst = _instance(ev, day, key, duration)
        if overlaps(inst.start, inst.end):
            out.append(inst)
    # Exceptions moved beyond the expansion horizon are still part of the series.
    for key, exc in ev.exceptions.items():
        if key not in seen and exc.times and overlaps(exc.times.start, exc.times.end):
            out.append(Instance(exc.id, "exception", ev, exc.times.start, exc.times.end, key, exc))
    return out


def find_instance(ev: Event, key: str) -> Instance | None:
    """The occurrence/exception of `ev` whose original date is `key` (None if cancelled/absent)."""
    if key in ev.cancelled:
        return None
    day = dt.datetime.strptime(key, "%Y%m%d").date()
    assert ev.recurrence is not None, "only a series has instances"
    for d in recurrence.dates(ev.recurrence, day):
        if d == day:
            break
    else:
        return None
    return _instance(ev, day, key, ev.times.end - ev.times.start)


def _instance(ev: Event, day: dt.date, key: str, duration: dt.timedelta) -> Instance:
    """The occurrence of `ev` on `day`, or its exception (moved or not) when there is one."""
    exc = ev.exceptions.get(key)
    if exc is not None and exc.times is not None:
        return Instance(exc.id, "exception", ev, exc.times.start, exc.times.end, key, exc)
    s = _occ_start(ev, day)
    if exc is not None:
        return Instance(exc.id, "exception", ev, s, s + duration, key, exc)
    return Instance(occurrence_id(ev.id, key), "occurrence", ev, s, s + duration, key)


def render_times(times: Times, tz: str | None) -> tuple[dict, dict]:
    if times.all_day:
        return ({"dateTime": timezones.fmt_local(times.start.replace(tzinfo=None)), "timeZone": tz or "UTC"},
                {"dateTime": timezones.fmt_local(times.end.replace(tzinfo=None)), "timeZone": tz or "UTC"})
    return timezones.render(times.start, tz), timezones.render(times.end, tz)


def render(ev: Event, tz: str | None, base_url: str, inst: Instance | None = None) -> dict[str, Any]:
    """Graph JSON of an event or of one of its instances."""
    f = ev.fields
    kind = "seriesMaster" if ev.is_master else "singleInstance"
    times = ev.times
    item_id = ev.id
    ck, modified = ev.change_key, ev.modified
    overrides: dict[str, Any] = {}
    if inst is not None and inst.kind in ("occurrence", "exception"):
        kind = inst.kind
        item_id = inst.id
        times = Times(inst.start, inst.end, ev.times.start_tz, ev.times.end_tz, ev.times.all_day)
        if inst.exception is not None:
            overrides = inst.exception.overrides
            ck, modified = inst.exception.change_key, inst.exception.modified
    fields = {**f, **overrides}
    start, end = render_times(times, tz)
    ical = ev.ical_uid if kind in ("singleInstance", "seriesMaster") else (
        ev.ical_uid[:-8] + hashlib.sha1(item_id.encode(), usedforsecurity=False).hexdigest()[:8].upper())
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{ck}"',
        "id": item_id,
        "createdDateTime": iso_z(ev.created),
        "lastModifiedDateTime": iso_z(modified),
        "changeKey": ck,
        "categories": fields["categories"],
        "transactionId": fields.get("transactionId"),
        "originalStartTimeZone": ev.times.start_tz,
        "originalEndTimeZone": ev.times.end_tz,
        "iCalUId": ical,
        "reminderMinutesBeforeStart": fields["reminderMinutesBeforeStart"],
        "isReminderOn": fields["isReminderOn"],
        "hasAttachments": False,
        "subject": fields["subject"],
        "bodyPreview": body_preview(fields.get("body")),
        "importance": fields["importance"],
        "sensitivity": fields["sensitivity"],
        "isAllDay": ev.times.all_day,
        "isCancelled": fields["isCancelled"],
        "isOrganizer": fields["isOrganizer"],
        "responseRequested": fields["responseRequested"],
        "seriesMasterId": ev.id if kind in ("occurrence", "exception") else None,
        "showAs": fields["showAs"],
        "type": kind,
        "webLink": f"{base_url}/owa/?itemid={item_id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": fields.get("onlineMeetingUrl"),
        "isOnlineMeeting": fields["isOnlineMeeting"],
        "onlineMeetingProvider": fields["onlineMeetingProvider"],
        "allowNewTimeProposals": fields["allowNewTimeProposals"],
        "isDraft": fields["isDraft"],
        "hideAttendees": fields["hideAttendees"],
        "responseStatus": fields["responseStatus"],
        "body": fields["body"],
        "start": start,
        "end": end,
        "location": fields["location"],
        "locations": fields["locations"],
        "recurrence": copy.deepcopy(ev.recurrence) if kind == "seriesMaster" else None,
        "attendees": fields["attendees"],
        "organizer": fields["organizer"],
        "onlineMeeting": fields.get("onlineMeeting"),
    }
    if inst is not None and inst.key is not None:
        # Occurrences and exceptions name the slot the series put them in (where an exception moved from).
        day = dt.datetime.strptime(inst.key, "%Y%m%d").date()
        out["originalStart"] = _occ_start(ev, day).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out

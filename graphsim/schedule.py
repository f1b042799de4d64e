"""getSchedule (free/busy), supportedTimeZones and supportedLanguages."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from . import events as ev_mod
from . import timezones
from .util import UTC, GraphError

if TYPE_CHECKING:
    from .simulator import GraphSimulator

SHOW_AS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4", "unknown": "0"}
LANGUAGES = [("en-US", "English (United States)"), ("en-GB", "English (United Kingdom)"),
             ("de-DE", "German (Germany)"), ("fr-FR", "French (France)"), ("es-ES", "Spanish (Spain)"),
             ("it-IT", "Italian (Italy)"), ("ja-JP", "Japanese (Japan)"), ("nl-NL", "Dutch (Netherlands)"),
             ("pt-BR", "Portuguese (Brazil)"), ("zh-CN", "Chinese (Simplified, PRC)")]


def get_schedule(sim: GraphSimulator, body: dict[str, Any], tz: str | None) -> dict[str, Any]:
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise GraphError(400, "ErrorInvalidParameter", "The 'schedules' parameter is required.")
    interval = int(body.get("availabilityViewInterval") or 30)
    if not 5 <= interval <= 1440:
        raise GraphError(400, "ErrorInvalidParameter", "The value of the AvailabilityViewInterval parameter "
                         "must be between 5 and 1440.")
    start = timezones.to_utc(body.get("startTime"), "startTime")
    end = timezones.to_utc(body.get("endTime"), "endTime")
    if end <= start:
        raise GraphError(400, "ErrorInvalidParameter", "The end time must be after the start time.")
    out_tz = (body.get("startTime") or {}).get("timeZone") or tz or "UTC"
    slots = max(1, int((end - start).total_seconds() // (interval * 60)))
    value = []
    for address in schedules:
        uid = sim.store.by_upn.get(str(address).lower())
        if uid is None:
            value.append({"scheduleId": address, "availabilityView": "", "scheduleItems": [],
                          "error": {"message": "The user or mailbox wasn't found.",
                                    "responseCode": "ErrorMailRecipientNotFound"}})
            continue
        mb = sim.store.mailboxes[uid]
        with sim.store.lock:
            default_id = mb.default_calendar().id
            insts = [i for ev in mb.events.values() if ev.calendar_id == default_id
                     for i in ev_mod.instances(ev, start, end)]
            items = []
            view = ["0"] * slots
            for inst in sorted(insts, key=lambda i: i.start):
                fields = {**inst.event.fields, **(inst.exception.overrides if inst.exception else {})}
                if fields.get("isCancelled"):
                    continue
                code = SHOW_AS.get(fields.get("showAs", "busy"), "2")
                for n in range(slots):
                    s = start + dt.timedelta(minutes=interval * n)
                    e = s + dt.timedelta(minutes=interval)
                    if inst.start < e and inst.end > s and code > view[n]:
                        view[n] = code
                private = fields.get("sensitivity") in ("private", "confidential")
                items.append({
                    "isPrivate": private, "status": fields.get("showAs", "busy"),
                    "subject": "" if private else fields.get("subject", ""),
                    "location": "" if private else (fields.get("location") or {}).get("displayName", ""),
                    "start": timezones.render(inst.start, out_tz), "end": timezones.render(inst.end, out_tz),
                })
        value.append({
            "scheduleId": address, "availabilityView": "".join(view), "scheduleItems": items,
            "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                             "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                             "timeZone": {"name": mb.time_zone}},
        })
    return {"@odata.context": f"{sim.graph_url}/$metadata#Collection(microsoft.graph.scheduleInformation)",
            "value": value}


def _offset_label(name: str) -> str:
    try:
        off = dt.datetime.now(UTC).astimezone(timezones.zone(name)).utcoffset() or dt.timedelta(0)
    except GraphError:
        off = dt.timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"(UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d})"


def supported_time_zones(graph_url: str, iana: bool) -> dict[str, Any]:
    names = timezones.iana_names() if iana else timezones.windows_names()
    return {"@odata.context": f"{graph_url}/$metadata#Collection(microsoft.graph.timeZoneInformation)",
            "value": [{"alias": n, "displayName": n if iana else f"{_offset_label(n)} {n}"} for n in names]}


def supported_languages(graph_url: str) -> dict[str, Any]:
    return {"@odata.context": f"{graph_url}/$metadata#Collection(microsoft.graph.localeInfo)",
            "value": [{"locale": loc, "displayName": name} for loc, name in LANGUAGES]}

"""In-memory directory and mailbox state, with a per-mailbox change log that drives delta and webhooks."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import events as ev_mod
from . import schema
from .util import GraphError, iso_z, new_guid, new_item_id, now

WELL_KNOWN_FOLDERS = {"inbox": "Inbox", "sentitems": "Sent Items", "drafts": "Drafts",
                      "deleteditems": "Deleted Items"}


@dataclass
class Change:
    """One entry of a mailbox change log; `key` narrows a series change to one occurrence."""

    seq: int
    kind: str            # "event" | "message"
    item_id: str
    container_id: str    # calendar id or mail folder id
    change_type: str     # created | updated | deleted
    key: str | None = None


@dataclass
class Calendar:
    id: str
    user_id: str
    name: str
    is_default: bool = False
    color: str = "auto"
    hex_color: str = ""
    change_key: str = field(default_factory=ev_mod.change_key)
    can_edit: bool = True


@dataclass
class Folder:
    id: str
    user_id: str
    display_name: str
    parent_id: str | None
    well_known: str | None = None


@dataclass
class Mailbox:
    """A user: directory entry plus calendars, events, mail and the change log."""

    user: dict[str, Any]
    tenant_id: str
    calendars: dict[str, Calendar] = field(default_factory=dict)
    events: dict[str, ev_mod.Event] = field(default_factory=dict)
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[Change] = field(default_factory=list)
    log_seqs: list[int] = field(default_factory=list)
    seq: int = 0
    consent: bool = True
    time_zone: str = "UTC"      # mailboxSettings.timeZone (getSchedule's workingHours)

    @property
    def id(self) -> str:
        return self.user["id"]

    def default_calendar(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)

    def folder_by_name(self, name: str) -> Folder | None:
        low = name.lower()
        for f in self.folders.values():
            if f.well_known == low:
                return f
        return self.folders.get(name)

    def changes_since(self, seq: int) -> list[Change]:
        """Log entries after `seq` (bisect: delta tokens stay cheap for large mailboxes)."""
        i = bisect.bisect_right(self.log_seqs, seq)
        return self.log[i:]


class Store:
    """All tenant state behind one lock; every mutation calls `notify` after logging it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, dict[str, Any]] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.by_upn: dict[str, str] = {}
        self.notify: Callable[[Mailbox, Change], None] = lambda mb, ch: None

    # -- directory -------------------------------------------------------
    def create_tenant(self, tenant_id: str | None = None, domain: str | None = None) -> str:
        with self.lock:
            tid = tenant_id or new_guid()
            self.tenants[tid] = {"id": tid, "domain": domain or f"tenant{len(self.tenants) + 1}.onmicrosoft.com"}
            return tid

    def create_user(self, tenant_id: str, display_name: str | None = None,
                    user_principal_name: str | None = None, consent: bool = True,
                    user_id: str | None = None, time_zone: str = "UTC") -> str:
        with self.lock:
            if tenant_id not in self.tenants:
                raise KeyError(f"unknown tenant {tenant_id}")
            uid = user_id or new_guid()
            n = len(self.mailboxes) + 1
            upn = user_principal_name or f"user{n}@{self.tenants[tenant_id]['domain']}"
            name = display_name or upn.split("@")[0]
            user: dict[str, Any] = {
                "businessPhones": [], "displayName": name, "givenName": name.split(" ")[0],
                "jobTitle": None, "mail": upn, "mobilePhone": None, "officeLocation": None,
                "preferredLanguage": "en-US", "surname": name.split(" ")[-1] if " " in name else None,
                "userPrincipalName": upn, "id": uid,
            }
            mb = Mailbox(user=user, tenant_id=tenant_id, consent=consent, time_zone=time_zone)
            cal = Calendar(id=new_item_id(b"CAL0"), user_id=uid, name="Calendar", is_default=True)
            mb.calendars[cal.id] = cal
            for wk, label in WELL_KNOWN_FOLDERS.items():
                f = Folder(id=new_item_id(b"FLD0"), user_id=uid, display_name=label, parent_id=None,
                           well_known=wk)
                mb.folders[f.id] = f
            self.mailboxes[uid] = mb
            self.by_upn[upn.lower()] = uid
            return uid

    def mailbox(self, id_or_upn: str) -> Mailbox:
        mb = self.mailboxes.get(id_or_upn) or self.mailboxes.get(self.by_upn.get(id_or_upn.lower(), ""))
        if mb is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{id_or_upn}' is invalid.")
        return mb

    # -- change log ------------------------------------------------------
    def log(self, mb: Mailbox, kind: str, item_id: str, container_id: str, change_type: str,
            key: str | None = None) -> Change:
        mb.seq += 1
        ch = Change(mb.seq, kind, item_id, container_id, change_type, key)
        mb.log.append(ch)
        mb.log_seqs.append(ch.seq)
        self.notify(mb, ch)
        return ch

    # -- calendars -------------------------------------------------------
    def calendar(self, mb: Mailbox, cal_id: str | None) -> Calendar:
        if cal_id is None:
            return mb.default_calendar()
        cal = mb.calendars.get(cal_id)
        if cal is None:
            raise GraphError(404, "ErrorItemNotFound",
                             "The specified object was not found in the store.")
        return cal

    def create_calendar(self, mb: Mailbox, name: str, color: str = "auto") -> Calendar:
        with self.lock:
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. "
                                 "The calendar name is required.")
            if any(c.name.lower() == name.lower() for c in mb.calendars.values()):
                raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            cal = Calendar(id=new_item_id(b"CAL0"), user_id=mb.id, name=name, color=color or "auto")
            mb.calendars[cal.id] = cal
            return cal

    def update_calendar(self, mb: Mailbox, cal_id: str, **fields: Any) -> Calendar:
        with self.lock:
            cal = self.calendar(mb, cal_id)
            if fields.get("name"):
                cal.name = fields["name"]
            if "color" in fields:
                cal.color = fields["color"] or "auto"
            if "hexColor" in fields:
                cal.hex_color = fields["hexColor"] or ""
            cal.change_key = ev_mod.change_key()
            return cal

    def delete_calendar(self, mb: Mailbox, cal_id: str) -> None:
        with self.lock:
            cal = self.calendar(mb, cal_id)
            if cal.is_default:
                raise GraphError(400, "ErrorInvalidRequest",
                                 "Your request can't be completed. The default calendar can't be deleted.")
            for ev in [e for e in mb.events.values() if e.calendar_id == cal_id]:
                del mb.events[ev.id]
                self.log(mb, "event", ev.id, cal_id, "deleted")
            del mb.calendars[cal_id]

    def render_calendar(self, mb: Mailbox, cal: Calendar) -> dict[str, Any]:
        return {
            "@odata.id": f"users('{mb.id}')/calendars('{cal.id}')",
            "id": cal.id, "name": cal.name, "color": cal.color, "hexColor": cal.hex_color,
            "isDefaultCalendar": cal.is_default, "changeKey": cal.change_key,
            "canShare": cal.is_default, "canViewPrivateItems": True, "canEdit": cal.can_edit,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
            "isRemovable": not cal.is_default,
            "owner": {"name": mb.user["displayName"], "address": mb.user["mail"]},
        }

    # -- events ----------------------------------------------------------
    def resolve_event(self, mb: Mailbox, item_id: str) -> tuple[ev_mod.Event, str | None]:
        """Map an event, occurrence or exception id to (series/event, occurrence key)."""
        ev = mb.events.get(item_id)
        if ev is not None:
            return ev, None
        occ = ev_mod.parse_occurrence_id(item_id)
        if occ and occ[0] in mb.events:
            master = mb.events[occ[0]]
            if ev_mod.find_instance(master, occ[1]) is not None:
                return master, occ[1]
        for master in mb.events.values():
            if master.exceptions:
                for key, exc in master.exceptions.items():
                    if exc.id == item_id and key not in master.cancelled:
                        return master, key
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def create_event(self, mb: Mailbox, cal_id: str | None, body: dict[str, Any]) -> ev_mod.Event:
        with self.lock:
            cal = self.calendar(mb, cal_id)
            ev = ev_mod.build_event(mb.user, cal.id, body)
            mb.events[ev.id] = ev
            self.log(mb, "event", ev.id, cal.id, "created")
            return ev

    def update_event(self, mb: Mailbox, item_id: str, body: dict[str, Any]) -> tuple[ev_mod.Event, str | None]:
        body = ev_mod.normalize(schema.validate(body, "event"))
        with self.lock:
            ev, key = self.resolve_event(mb, item_id)
            if key is None:
                ev_mod.apply_patch(ev, body)
                self.log(mb, "event", ev.id, ev.calendar_id, "updated")
                return ev, None
            # PATCH on an occurrence turns it into an exception of the series.
            inst = ev_mod.find_instance(ev, key)
            assert inst is not None
            exc = ev.exceptions.get(key) or ev_mod.Exception_(
                id=inst.id, overrides={}, times=None, modified=now(), change_key="")
            for k, v in body.items():
                if k in ev_mod.PLAIN_FIELDS:
                    exc.overrides[k] = v
            if "start" in body or "end" in body:
                cur_s, cur_e = ev_mod.render_times(ev_mod.Times(inst.start, inst.end, "UTC", "UTC",
                                                                ev.times.all_day), None)
                exc.times = ev_mod.parse_times(body.get("start") or cur_s, body.get("end") or cur_e,
                                               ev.times.all_day)
            exc.modified = now()
            exc.change_key = ev_mod.change_key()
            ev.exceptions[key] = exc
            self.log(mb, "event", ev.id, ev.calendar_id, "updated", key)
            return ev, key

    def delete_event(self, mb: Mailbox, item_id: str) -> None:
        with self.lock:
            ev, key = self.resolve_event(mb, item_id)
            if key is None:
                del mb.events[ev.id]
                self.log(mb, "event", ev.id, ev.calendar_id, "deleted")
            else:
                ev.cancelled.add(key)
                ev.exceptions.pop(key, None)
                self.log(mb, "event", ev.id, ev.calendar_id, "updated", key)

    def cancel_event(self, mb: Mailbox, item_id: str, comment: str = "") -> None:
        with self.lock:
            ev, _key = self.resolve_event(mb, item_id)
            if not ev.fields.get("isOrganizer"):
                raise GraphError(400, "ErrorAccessDenied",
                                 "Your request can't be completed. You need to be an organizer to cancel "
                                 "a meeting.")
            self.delete_event(mb, item_id)

    def move_event(self, mb: Mailbox, item_id: str, to_calendar_id: str, immutable: bool = False) -> ev_mod.Event:
        """Moving changes the id (Outlook ids are folder-bound) unless immutable ids are in use."""
        with self.lock:
            ev, key = self.resolve_event(mb, item_id)
            if key is not None:
                raise GraphError(400, "ErrorInvalidRequest", "An occurrence can't be moved on its own.")
            target = self.calendar(mb, to_calendar_id)
            del mb.events[ev.id]
            self.log(mb, "event", ev.id, ev.calendar_id, "deleted")
            if not immutable:
                ev.id = new_item_id()
                # The series' instances are folder-bound items too: an exception made before the move
                # gets a new id like its occurrences (concepts/outlook-immutable-id.md: ids change
                # when an item is moved). Keeping the old one broke the invariant the delta log
                # relies on (instance id == occurrence_id(series id, key), see delta.next_round):
                # deleting that exception later reported `@removed` for an id nobody had.
                for key, exc in ev.exceptions.items():
                    exc.id = ev_mod.occurrence_id(ev.id, key)
            ev.calendar_id = target.id
            ev.touch()
            mb.events[ev.id] = ev
            self.log(mb, "event", ev.id, target.id, "created")
            return ev

    def events_in(self, mb: Mailbox, cal_id: str | None) -> list[ev_mod.Event]:
        if cal_id is None:
            return list(mb.events.values())
        return [e for e in mb.events.values() if e.calendar_id == cal_id]

    # -- ground truth ------------------------------------------------------
    def ground_truth(self, mb: Mailbox, base_url: str, start: Any = None, end: Any = None) -> dict[str, Any]:
        with self.lock:
            items = []
            for ev in mb.events.values():
                for inst in ev_mod.instances(ev, start, end):
                    d = ev_mod.render(ev, None, base_url, inst)
                    d["calendarId"] = ev.calendar_id
                    items.append(d)
            items.sort(key=lambda d: (d["start"]["dateTime"], d["id"]))
            return {
                "user": dict(mb.user),
                "calendars": [self.render_calendar(mb, c) for c in mb.calendars.values()],
                "events": items,
                "masters": [ev_mod.render(e, None, base_url) for e in mb.events.values() if e.is_master],
                "messages": {f.id: sorted(m["id"] for m in mb.messages.values()
                                          if m["parentFolderId"] == f.id) for f in mb.folders.values()},
                "generatedDateTime": iso_z(now()),
            }

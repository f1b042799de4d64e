"""calendarView/delta: rounds, pages and opaque state tokens over the mailbox change log."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from . import events as ev_mod
from .store import Mailbox
from .util import GraphError

EVENT_TYPE = "#microsoft.graph.event"   # Graph annotates every delta item with it


@dataclass
class SyncState:
    """What a deltaLink stands for: window, calendar, log position and the ids the client holds."""

    user_id: str
    calendar_id: str
    start: dt.datetime
    end: dt.datetime
    seq: int
    known: dict[str, frozenset[str]]


@dataclass
class Round:
    """Items of one round still to page out, and the state its deltaLink will carry."""

    user_id: str
    items: list[tuple[str, Any, Any]]   # ("full", event, instance) | ("removed", id, None)
    offset: int
    page_size: int
    final: SyncState


def sync_state_not_found() -> GraphError:
    return GraphError(410, "syncStateNotFound",
                      "The sync state generation is not found; the delta token has expired or was evicted. "
                      "Start a new synchronization round without a delta token.")


class DeltaTokens:
    """Opaque handles for skip/delta tokens, bounded like Exchange's sync-state cache."""

    def __init__(self, capacity: int = 50000) -> None:
        self.lock = threading.Lock()
        self.capacity = capacity
        self.tokens: OrderedDict[str, Any] = OrderedDict()

    def put(self, value: Any) -> str:
        tok = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[tok] = value
            while len(self.tokens) > self.capacity:
                self.tokens.popitem(last=False)
        return tok

    def get(self, tok: str) -> Any:
        with self.lock:
            value = self.tokens.get(tok)
            if value is not None:
                self.tokens.move_to_end(tok)
            return value

    def invalidate(self, user_id: str | None = None) -> int:
        with self.lock:
            doomed = [t for t, v in self.tokens.items() if user_id is None or v.user_id == user_id]
            for t in doomed:
                del self.tokens[t]
            return len(doomed)

    def clear(self) -> None:
        with self.lock:
            self.tokens.clear()


def initial_round(mb: Mailbox, calendar_id: str, start: dt.datetime, end: dt.datetime,
                  page_size: int) -> Round:
    """Full sync: every instance in the window, as of the current log position."""
    known: dict[str, frozenset[str]] = {}
    found: list[ev_mod.Instance] = []
    for ev in mb.events.values():
        if ev.calendar_id != calendar_id:
            continue
        insts = ev_mod.instances(ev, start, end)
        if insts:
            known[ev.id] = frozenset(i.id for i in insts)
            found.extend(insts)
    found.sort(key=lambda i: (i.start, i.id))
    items = [("full", i.event, i) for i in found]
    return Round(mb.id, items, 0, page_size, SyncState(mb.id, calendar_id, start, end, mb.seq, known))


def next_round(mb: Mailbox, state: SyncState, page_size: int) -> Round:
    """Exactly the changes since `state`, plus Graph's quirk: out-of-window changes come as removed."""
    changed: dict[str, set[str] | None] = {}
    for ch in mb.changes_since(state.seq):
        if ch.kind != "event" or ch.container_id != state.calendar_id:
            continue
        if ch.key is None or ch.change_type != "updated":
            changed[ch.item_id] = None
        elif ch.item_id not in changed:
            changed[ch.item_id] = {ch.key}
        elif changed[ch.item_id] is not None:
            changed[ch.item_id].add(ch.key)  # type: ignore[union-attr]  # not None: checked on the line above
    if not changed:
        return Round(mb.id, [], 0, page_size, SyncState(mb.id, state.calendar_id, state.start, state.end,
                                                         mb.seq, state.known))
    known = dict(state.known)
    items: list[tuple[str, Any, Any]] = []
    for eid, keys in changed.items():
        ev = mb.events.get(eid)
        if ev is not None and ev.calendar_id != state.calendar_id:
            ev = None
        prev = known.get(eid, frozenset())
        cur = ev_mod.instances(ev, state.start, state.end) if ev is not None else []
        cur_ids = frozenset(i.id for i in cur)
        if keys is None:
            items.extend(("full", ev, i) for i in cur)
            items.extend(("removed", rid, None) for rid in sorted(prev - cur_ids))
            if not cur and not prev:
                items.append(("removed", eid, None))
        else:
            # An instance's id is occurrence_id(series id, key), exceptions included (store.move_event
            # keeps that true when a move changes the series id), so a deleted occurrence or exception
            # is reported under the id the client holds.
            ids = {ev_mod.occurrence_id(eid, k) for k in keys}
            items.extend(("full", ev, i) for i in cur if i.key in keys)
            items.extend(("removed", rid, None) for rid in sorted(ids - cur_ids))
        if cur_ids:
            known[eid] = cur_ids
        else:
            known.pop(eid, None)
    return Round(mb.id, items, 0, page_size, SyncState(mb.id, state.calendar_id, state.start, state.end,
                                                       mb.seq, known))


def removed_item(item_id: str) -> dict[str, Any]:
    return {"@odata.type": EVENT_TYPE, "id": item_id, "@removed": {"reason": "deleted"}}

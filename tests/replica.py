"""Comparing a replica with the simulator's ground truth, in the shape of the tables.

Used by the end-to-end sync tests and the convergence test, so both judge
convergence by the same rule.
"""

from __future__ import annotations

from typing import Any


def expected_rows(sim: Any, settings: Any, user: str) -> dict[str, Any]:
    """Graph's truth within the sync window: calendars, and events keyed by id -> (calendar id, data).

    Series masters are expected for every series with an occurrence in the window
    (the sync stores them beside their occurrences).
    """
    from shared.sync.window import current_window

    start, end = current_window(settings)
    truth = sim.ground_truth(user, start, end)
    events = {}
    for item in truth["events"]:
        data = dict(item)
        events[data["id"]] = (data.pop("calendarId"), data)
    referenced = {d["seriesMasterId"]: cal for cal, d in events.values() if d.get("seriesMasterId")}
    for master in truth["masters"]:
        if master["id"] in referenced:
            events[master["id"]] = (referenced[master["id"]], master)
    return {"calendars": {c["id"]: c for c in truth["calendars"]}, "events": events}


def replica_rows(repo: Any, user: str) -> dict[str, Any]:
    """What the repository holds for `user`, in the same shape as `expected_rows`."""
    return {"calendars": {c.microsoft_calendar_id: c.data for c in repo.list_calendars(user)},
            "events": {e.microsoft_event_id: (e.microsoft_calendar_id, e.data) for e in repo.list_events(user)}}

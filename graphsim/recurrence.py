"""Expansion of Graph patternedRecurrence into occurrence dates (local to the series zone)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from .util import GraphError

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
PATTERNS = {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
RANGES = {"endDate", "noEnd", "numbered"}
MAX_YEARS = 30


def normalize(rec: dict | None, start_date: dt.date, start_tz: str) -> dict | None:
    """Validate and fill defaults the way Graph echoes a patternedRecurrence back."""
    if rec is None:
        return None
    pat = dict(rec.get("pattern") or {})
    rng = dict(rec.get("range") or {})
    ptype = pat.get("type")
    if ptype not in PATTERNS:
        raise GraphError(400, "ErrorInvalidRequest", f"Recurrence pattern type '{ptype}' is not valid.")
    if rng.get("type") not in RANGES:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence range type is not valid.")
    pattern = {
        "type": ptype,
        "interval": int(pat.get("interval") or 1),
        "month": int(pat.get("month") or 0),
        "dayOfMonth": int(pat.get("dayOfMonth") or 0),
        "firstDayOfWeek": pat.get("firstDayOfWeek") or "sunday",
        "index": pat.get("index") or "first",
    }
    if pat.get("daysOfWeek") or ptype in ("weekly", "relativeMonthly", "relativeYearly"):
        days = [d.lower() for d in (pat.get("daysOfWeek") or [])]
        if not days or any(d not in DAYS for d in days):
            raise GraphError(400, "ErrorInvalidRequest", "Recurrence pattern daysOfWeek is required.")
        pattern["daysOfWeek"] = days
    if pattern["interval"] < 1:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence pattern interval must be positive.")
    if ptype in ("absoluteMonthly", "absoluteYearly") and not 1 <= pattern["dayOfMonth"] <= 31:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence pattern dayOfMonth is required.")
    range_start = rng.get("startDate") or start_date.isoformat()
    out_range = {
        "type": rng["type"],
        "startDate": range_start,
        "endDate": rng.get("endDate") or "0001-01-01",
        "recurrenceTimeZone": rng.get("recurrenceTimeZone") or start_tz,
        "numberOfOccurrences": int(rng.get("numberOfOccurrences") or 0),
    }
    if rng["type"] == "endDate" and out_range["endDate"] == "0001-01-01":
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence range endDate is required.")
    if rng["type"] == "numbered" and out_range["numberOfOccurrences"] < 1:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence range numberOfOccurrences is required.")
    return {"pattern": pattern, "range": out_range}


def _week_start(d: dt.date, first: str) -> dt.date:
    fd = DAYS.index(first) if first in DAYS else 6
    return d - dt.timedelta(days=(d.weekday() - fd) % 7)


def _months(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _nth_weekday_match(d: dt.date, days: list[str], index: str) -> bool:
    if DAYS[d.weekday()] not in days:
        return False
    idx = INDEX.get(index, 0)
    if idx == -1:
        return (d + dt.timedelta(days=7)).month != d.month
    return (d.day - 1) // 7 == idx


def _matches(p: dict, start: dt.date, d: dt.date) -> bool:
    t = p["type"]
    n = p["interval"]
    if t == "daily":
        return (d - start).days % n == 0
    if t == "weekly":
        if DAYS[d.weekday()] not in p["daysOfWeek"]:
            return False
        weeks = (_week_start(d, p["firstDayOfWeek"]) - _week_start(start, p["firstDayOfWeek"])).days // 7
        return weeks % n == 0
    if t == "absoluteMonthly":
        return d.day == p["dayOfMonth"] and _months(start, d) % n == 0
    if t == "relativeMonthly":
        return _months(start, d) % n == 0 and _nth_weekday_match(d, p["daysOfWeek"], p["index"])
    if t == "absoluteYearly":
        return (d.month == p["month"] and d.day == p["dayOfMonth"]
                and (d.year - start.year) % n == 0)
    if t == "relativeYearly":
        return (d.month == p["month"] and (d.year - start.year) % n == 0
                and _nth_weekday_match(d, p["daysOfWeek"], p["index"]))
    return False


def dates(rec: dict, until: dt.date) -> Iterator[dt.date]:
    """Occurrence dates from the range start up to `until` (inclusive), honouring the range end."""
    p, r = rec["pattern"], rec["range"]
    start = dt.date.fromisoformat(r["startDate"])
    last = until
    if r["type"] == "endDate":
        last = min(last, dt.date.fromisoformat(r["endDate"]))
    last = min(last, start + dt.timedelta(days=366 * MAX_YEARS))
    remaining = r["numberOfOccurrences"] if r["type"] == "numbered" else -1
    d = start
    one = dt.timedelta(days=1)
    if p["type"] == "daily" and remaining < 0:
        step = dt.timedelta(days=p["interval"])
        while d <= last:
            yield d
            d += step
        return
    while d <= last and remaining != 0:
        if _matches(p, start, d):
            yield d
            remaining -= 1
        d += one

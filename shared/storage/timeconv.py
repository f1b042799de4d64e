"""Graph `dateTimeTimeZone` values to UTC instants.

Graph sends local wall-clock times with a zone name that can be `UTC`, an IANA
name, a Windows name ("Pacific Standard Time") or `tzone://Microsoft/...`, and
fractions with 7 digits. Windows names go through tzlocal's CLDR table, which
is maintained upstream, instead of a hand-written copy. All-day events are
dates, not instants: they keep their calendar date at UTC midnight so no zone
conversion can move them to the previous or next day.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)
_FRACTION = re.compile(r"\.(\d{1,7})")

_UTC_ALIASES = {"utc", "gmt", "z", "etc/utc", "etc/gmt", "coordinated universal time", "utc+00:00",
                "microsoft/utc", "tzone://microsoft/utc"}
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*(?P<sign>[+-])(?P<h>\d{1,2}):?(?P<m>\d\d)?$", re.IGNORECASE)


@lru_cache(maxsize=512)
def resolve_zone(name: str | None) -> tzinfo:
    """The tzinfo for any zone name Graph may send; unknown names fall back to UTC (logged)."""
    if not name:
        return UTC
    cleaned = name.strip()
    if cleaned.lower().startswith("tzone://microsoft/"):
        cleaned = cleaned[len("tzone://microsoft/"):]
    if cleaned.lower() in _UTC_ALIASES:
        return UTC
    from tzlocal.windows_tz import win_tz

    iana = win_tz.get(cleaned)
    if iana is None:
        lowered = {k.lower(): v for k, v in win_tz.items()}
        iana = lowered.get(cleaned.lower())
    try:
        return ZoneInfo(iana or cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    offset = _OFFSET.match(cleaned)
    if offset:
        minutes = int(offset["h"]) * 60 + int(offset["m"] or 0)
        return timezone(timedelta(minutes=minutes if offset["sign"] == "+" else -minutes))
    log.warning("unknown time zone %r: treating it as UTC", name)
    return UTC


@lru_cache(maxsize=8192)
def parse_iso(value: str) -> datetime:
    """An ISO-8601 text as a datetime (to the microsecond). Cached: a row's timestamps are read
    by several columns, and datetimes are immutable."""
    try:
        return datetime.fromisoformat(value.strip())  # 3.11+: 'Z', offsets, 7-digit fractions (cut to 6)
    except ValueError:
        raise ValueError(f"not an ISO-8601 date-time: {value!r}") from None


def split_fraction(value: str) -> tuple[datetime, str]:
    """Parse an ISO-8601 text keeping all fraction digits: (datetime to the microsecond, 7-digit fraction)."""
    parsed = parse_iso(value)
    frac = _FRACTION.search(value)
    return parsed, frac.group(1).ljust(7, "0") if frac else "0000000"


def to_instant(value: dict[str, Any] | None, *, all_day: bool = False) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware UTC datetime; all-day -> its date at UTC midnight."""
    if not value or not value.get("dateTime"):
        return None
    local = parse_iso(value["dateTime"])
    if all_day:
        return datetime(local.year, local.month, local.day, tzinfo=UTC)
    if local.tzinfo is None:
        local = local.replace(tzinfo=resolve_zone(value.get("timeZone")))
    return local.astimezone(UTC)


def parse_utc(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp (lastModifiedDateTime, ...) as aware UTC; naive means UTC."""
    if not value:
        return None
    parsed = parse_iso(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


_CANONICAL_UTC = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?Z$")


def sortable(value: str | None) -> str:
    """Fixed-width UTC text with 7 fraction digits, so versions compare as strings ('' when absent)."""
    if not value:
        return ""
    canonical = _CANONICAL_UTC.match(value)
    if canonical:  # what Graph sends: already UTC, only the fraction needs padding
        return f"{canonical[1]}.{(canonical[2] or '').ljust(7, '0')}Z"
    parsed, frac = split_fraction(value)
    instant = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond:06d}{frac[6]}Z"


def all_day_date(value: datetime | None) -> date | None:
    """The calendar date an all-day row stands for."""
    return value.date() if value else None

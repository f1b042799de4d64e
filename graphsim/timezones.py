"""Windows <-> IANA time zone names and Graph's dateTimeTimeZone conversions."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .util import UTC, GraphError

try:  # tzlocal ships the CLDR mapping; the small table below is the fallback.
    from tzlocal.windows_tz import tz_win as _TZ_WIN
    from tzlocal.windows_tz import win_tz as _WIN_TZ
except ImportError:  # pragma: no cover - exercised only without tzlocal
    _WIN_TZ = {}
    _TZ_WIN = {}

_FALLBACK = {
    "UTC": "Etc/UTC", "GMT Standard Time": "Europe/London", "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris", "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau", "FLE Standard Time": "Europe/Kiev",
    "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles", "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu", "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai", "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney", "New Zealand Standard Time": "Pacific/Auckland",
    "E. South America Standard Time": "America/Sao_Paulo", "Singapore Standard Time": "Asia/Singapore",
    "Arabian Standard Time": "Asia/Dubai", "Russian Standard Time": "Europe/Moscow",
}
WIN_TO_IANA: dict[str, str] = {**_FALLBACK, **_WIN_TZ, "UTC": "Etc/UTC"}
IANA_TO_WIN: dict[str, str] = {**{v: k for k, v in _FALLBACK.items()}, **_TZ_WIN}


@functools.lru_cache(maxsize=512)
def zone(name: str | None) -> dt.tzinfo:
    """Resolve a Windows or IANA zone name; unknown names are a 400 like Graph's."""
    if not name or name.upper() in ("UTC", "ETC/UTC", "GMT", "Z", "COORDINATED UNIVERSAL TIME"):
        return UTC
    iana = WIN_TO_IANA.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(400, "TimeZoneNotSupportedException",
                         f"A valid TimeZone value must be specified. The following TimeZone value is not "
                         f"supported: '{name}'.") from None


def to_utc(dtz: dict | None, field: str = "start") -> dt.datetime:
    """dateTimeTimeZone -> aware UTC datetime."""
    if not isinstance(dtz, dict) or not dtz.get("dateTime"):
        raise GraphError(400, "ErrorInvalidRequest", f"Your request can't be completed. '{field}' is required.")
    text = str(dtz["dateTime"]).strip()
    tz = zone(dtz.get("timeZone"))
    if text.endswith("Z"):
        text = text[:-1]
    if "." in text:
        head, frac = text.split(".", 1)
        text = head + "." + frac[:6]
    try:
        naive = dt.datetime.fromisoformat(text)
    except ValueError:
        raise GraphError(400, "ErrorInvalidRequest",
                         f"Cannot convert the literal '{dtz['dateTime']}' to the expected type "
                         "'Edm.DateTimeOffset'.") from None
    if naive.tzinfo is not None:
        naive = naive.astimezone(tz).replace(tzinfo=None)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def fmt_local(t: dt.datetime) -> str:
    """Graph's wire form: local wall time with 7 fractional digits, no offset."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0"


def render(t_utc: dt.datetime, tz_name: str | None) -> dict[str, str]:
    """UTC instant -> dateTimeTimeZone in the caller's preferred zone (UTC by default)."""
    if not tz_name or tz_name == "UTC":
        return {"dateTime": fmt_local(t_utc.astimezone(UTC)), "timeZone": "UTC"}
    return {"dateTime": fmt_local(t_utc.astimezone(zone(tz_name))), "timeZone": tz_name}


def windows_names() -> list[str]:
    return sorted(WIN_TO_IANA)


def iana_names() -> list[str]:
    return sorted(set(IANA_TO_WIN))

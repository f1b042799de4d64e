"""How long subscriptions live and when they are due for renewal.

Graph caps an Outlook subscription's lifetime (10,080 minutes documented now,
4,230 in older documentation and some tenants) and says so in a 400
`ExtensionError`; the number is parsed from the message and remembered per
account, so the limit is learned, never hard-coded. SUBSCRIPTION_LIFETIME_MINUTES
defaults to 10,070 (the connector seed's default).

The renewal timer runs on an NCRONTAB schedule (a setting). A subscription is
due when it expires before the next two runs plus RENEWAL_MARGIN_MINUTES: one
missed or failed run never lets it lapse. The period is derived here with a
small NCRONTAB reader (croniter is a dev-only dependency): the longest gap
between two runs over a scanned week, at minute resolution.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings

_LIMIT = re.compile(r"can only be\s+(\d+)\s+minutes", re.IGNORECASE)
# Requests ask for a minute less than the limit: a clock slightly ahead of Graph's must not
# turn every renewal into an ExtensionError.
CLOCK_SLACK = dt.timedelta(minutes=1)
_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # sec min hour day month weekday
_DAY_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


def parse_extension_limit(message: str | None) -> int | None:
    """'Subscription expiration can only be 4230 minutes in the future.' -> 4230."""
    match = _LIMIT.search(message or "")
    return int(match.group(1)) if match else None


def lifetime_minutes(settings: Settings, learned: int | None = None) -> int:
    """The configured lifetime, lowered to a limit Graph reported for this account."""
    configured = int(settings.subscription_lifetime_minutes)
    return min(configured, learned) if learned else configured


def expiration_for(minutes: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now + dt.timedelta(minutes=minutes) - CLOCK_SLACK


def iso(value: dt.datetime) -> str:
    """Graph's UTC form: 2024-05-01T10:00:00.000Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Graph may send 7 fractional digits; fromisoformat takes at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- NCRONTAB -----------------------------------------------------------------------------
def _field_values(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _number(a, names), _number(b, names)
        else:
            start = _number(part, names)
            end = high if step > 1 else start
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"field {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text[:3] in names:
        return names[text[:3]]
    return int(text)


@lru_cache(maxsize=16)
def schedule_period(expression: str) -> dt.timedelta:
    """Longest gap between two runs of a six-field NCRONTAB expression (seconds first).

    Runs more often than once a minute count as one minute. Raises ValueError for
    an expression it cannot read, so a typo in RENEWAL_SCHEDULE is reported.
    """
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs six fields (second minute hour day month weekday), got {expression!r}")
    names = (None, None, None, None, _MONTH_NAMES, _DAY_NAMES)
    sets = [_field_values(f, lo, hi, n) for f, (lo, hi), n in zip(fields, _RANGES, names, strict=True)]
    _, minutes, hours, days, months, weekdays = sets
    day_any, weekday_any = fields[3] in ("*", "?"), fields[5] in ("*", "?")
    start = dt.datetime(2024, 1, 1)  # a Monday; 2024 is a leap year
    span_minutes = 7 * 24 * 60 if fields[3] in ("*", "?") and fields[4] in ("*", "?") else 366 * 24 * 60
    previous: dt.datetime | None = None
    first: dt.datetime | None = None
    longest = dt.timedelta(0)
    for offset in range(span_minutes):
        moment = start + dt.timedelta(minutes=offset)
        if moment.minute not in minutes or moment.hour not in hours or moment.month not in months:
            continue
        day_ok = moment.day in days
        weekday_ok = (moment.isoweekday() % 7) in weekdays
        if not (day_ok and weekday_ok if day_any or weekday_any else day_ok or weekday_ok):
            continue
        if previous is not None:
            longest = max(longest, moment - previous)
        first = first or moment
        previous = moment
    if previous is None or first is None:
        raise ValueError(f"NCRONTAB {expression!r} never fires")
    # The wrap-around gap (last run of the span to the first of the next).
    longest = max(longest, first + dt.timedelta(minutes=span_minutes) - previous)
    return max(longest, dt.timedelta(minutes=1))


def renewal_horizon(settings: Settings, now: dt.datetime | None = None) -> dt.datetime:
    """Subscriptions expiring before this moment are renewed now."""
    now = now or dt.datetime.now(dt.UTC)
    period = schedule_period(settings.renewal_schedule)
    return now + 2 * period + dt.timedelta(minutes=int(settings.renewal_margin_minutes))

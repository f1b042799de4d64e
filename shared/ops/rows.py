"""`python -m shared rows users|calendars|events`: the replicated rows, from the terminal.

Read through the repository, so the command is the same on SQLite, PostgreSQL
and Table Storage. `--since` keeps rows the replica changed since then
(`row_updated_at`), newest first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.ops import table
from shared.storage import people
from shared.storage.types import CalendarRow, EventRow, UserRow

if TYPE_CHECKING:
    from shared.storage.base import Repository

ReplicaRow = UserRow | CalendarRow | EventRow

KINDS = ("users", "calendars", "events")
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 instant (UTC when no offset is given), or an age: 30s, 15m, 2h, 7d."""
    ago = _AGO.match(text.strip())
    if ago:
        return now - dt.timedelta(**{_UNIT[ago.group(2)]: int(ago.group(1))})
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected an ISO 8601 time (2025-01-31T08:00Z) or an age "
                         "(30s, 15m, 2h, 7d)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RowQuery:
    kind: str
    user: str | None = None  # microsoft_user_id or address
    since: dt.datetime | None = None
    limit: int = 50


def select(repo: Repository, query: RowQuery) -> list[ReplicaRow]:
    """The rows asked for, newest change first."""
    if query.user is not None:
        user = repo.get_user(people.resolve(repo, query.user))
        if user is None:
            raise LookupError(f"no replicated user {query.user!r}")
        users = [user]
    else:
        users = repo.list_users()
    ids = [u.microsoft_user_id for u in users if u.microsoft_user_id]  # the key of a stored row: always set
    rows: list[ReplicaRow]
    if query.kind == "users":
        rows = list(users)
    elif query.kind == "calendars":
        rows = [c for user_id in ids for c in repo.list_calendars(user_id)]
    else:
        rows = [e for user_id in ids for e in repo.list_events(user_id)]
    if query.since is not None:
        rows = [r for r in rows if r.row_updated_at and r.row_updated_at >= query.since]
    rows.sort(key=lambda r: r.row_updated_at or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
    return rows[: query.limit]


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def render_text(repo: Repository, kind: str, rows: list[ReplicaRow]) -> str:
    """A table of rows of one kind (`select`'s answer); keys of stored rows are always set (`or ""` for mypy)."""
    if not rows:
        return f"no {kind} rows"
    labels = {u.microsoft_user_id: people.label(u.microsoft_user_id, u.data) for u in repo.list_users()
              if u.microsoft_user_id}
    header: tuple[str, ...]
    cells: list[tuple[str, ...]]
    if kind == "users":
        header = ("address", "name", "microsoft_user_id", "row_updated_at")
        cells = [(people.address(r.data) or "", people.display_name(r.data) or "", r.microsoft_user_id or "",
                  _when(r.row_updated_at)) for r in rows if isinstance(r, UserRow)]
    elif kind == "calendars":
        header = ("user", "calendar", "default", "row_updated_at", "microsoft_calendar_id")
        cells = [(_label(labels, r.microsoft_user_id), r.name or "",
                  "yes" if r.is_default_calendar else "", _when(r.row_updated_at), r.microsoft_calendar_id or "")
                 for r in rows if isinstance(r, CalendarRow)]
    else:
        events = [r for r in rows if isinstance(r, EventRow)]
        names = {c.microsoft_calendar_id: c.name for u in {r.microsoft_user_id for r in events} if u
                 for c in repo.list_calendars(u)}
        header = ("user", "calendar", "start", "subject", "type", "row_updated_at")
        cells = [(_label(labels, r.microsoft_user_id), names.get(r.microsoft_calendar_id) or "",
                  _when(r.start_at), table.clip(r.subject, 40) + (" (cancelled)" if r.is_cancelled else ""),
                  r.type or "", _when(r.row_updated_at)) for r in events]
    return "\n".join(table.render(header, cells))


def _label(labels: dict[str, str], user_id: str | None) -> str:
    return labels.get(user_id or "", user_id or "")


_NOT_SHOWN = frozenset({"encrypted_refresh_token"})  # ciphertext: of no use on a terminal


def as_json(row: ReplicaRow) -> dict[str, Any]:
    """Every column of the row (times in ISO 8601), as stored, but the encrypted refresh token."""
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name not in _NOT_SHOWN}
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()}

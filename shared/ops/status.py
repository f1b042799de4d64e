"""One picture of replication health, for `GET /api/status` and `python -m shared status`.

Per account: who it is (address, name), linked or reauth_required (and why),
the subscription of every calendar and when it expires -- or that it expired, is
missing (checked against Graph: a row can outlive a subscription deleted from
outside) or that the calendar is over the per-mailbox cap and only the
safety-net sync covers it -- whether other calendars are read by delta or
listed, the last successful sync and its age, the last error, rows per table.
Then totals and the depths of the sync, outbound and poison queues, so a
message that failed maxDequeueCount times is visible. The records are typed
(`UserStatus`, `SubscriptionStatus`); the JSON document and the terminal table
are two renderings of them.

Longer than most modules because the records, their collection and both renderings
change together: a field added to status is added once, here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.ops import table
from shared.storage import people

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.base import Repository
    from shared.storage.types import AccountState, CalendarRow, CalendarSubscription, UserRow

_ROW_TABLES = ("microsoft_calendar_v1", "microsoft_calendar_event_v1")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _age(value: dt.datetime | None, now: dt.datetime) -> int | None:
    return int((now - value).total_seconds()) if value else None


def subscription_state(sub_id: str | None, expiration: dt.datetime | None, now: dt.datetime) -> str:
    if not sub_id:
        return "missing"
    if expiration is None or expiration <= now:
        return "expired"
    return "live"


@dataclass(frozen=True)
class SubscriptionStatus:
    """One Graph subscription of an account: `resource` says what it watches."""

    resource: str
    id: str | None
    expires_at: dt.datetime | None
    state: str

    def expires_in_minutes(self, now: dt.datetime) -> int | None:
        return int((self.expires_at - now).total_seconds() // 60) if self.expires_at else None

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {"resource": self.resource, "id": self.id, "expires_at": _iso(self.expires_at),
                "state": self.state, "expires_in_minutes": self.expires_in_minutes(now)}

    def short(self, now: dt.datetime) -> str:
        """`events until 12-04 14:01Z (2d)` / `events expired 12-01 09:00Z` / `events missing`."""
        when = self.expires_at.astimezone(dt.UTC).strftime("%m-%d %H:%MZ") if self.expires_at else ""
        if self.state == "live":
            return f"{self.resource} until {when} ({_duration((self.expires_in_minutes(now) or 0) * 60)})"
        return f"{self.resource} {self.state} {when}".rstrip()


@dataclass(frozen=True)
class UserStatus:
    """Health of one account."""

    user_id: str
    address: str | None
    name: str | None
    status: str
    status_reason: str | None
    mode: str
    subscriptions: tuple[SubscriptionStatus, ...]
    last_sync_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    rows: dict[str, int]
    problems: tuple[str, ...] = field(default=())
    overall: SubscriptionStatus | None = None  # the mailbox's summary: the first calendar not live, else live
    calendars: tuple[dict[str, Any], ...] = ()  # per calendar: subscription, state, error (calendar_states)
    other_calendars: str = "delta"
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.address or self.name or self.user_id

    @property
    def events_subscription(self) -> SubscriptionStatus:
        return self.overall or self.subscriptions[0]

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "address": self.address, "name": self.name,
            "status": self.status, "status_reason": self.status_reason, "mode": self.mode,
            "subscription": self.events_subscription.as_dict(now),  # the mailbox as a whole
            "subscriptions": [s.as_dict(now) for s in self.subscriptions],
            "last_sync_at": _iso(self.last_sync_at), "last_sync_age_seconds": _age(self.last_sync_at, now),
            "last_error": self.last_error, "last_error_at": _iso(self.last_error_at),
            "calendars": list(self.calendars), "other_calendars": self.other_calendars,
            "rows": dict(self.rows), "problems": list(self.problems), "notes": list(self.notes),
        }


def calendar_states(subscriptions: list[CalendarSubscription], calendars: list[CalendarRow],
                    alive: set[str] | None, now: dt.datetime) -> list[dict[str, Any]]:
    """One entry per replicated calendar: its subscription and whether Graph still holds it."""
    # `if ...microsoft_calendar_id`: the key of a stored row is always set; the test narrows its type.
    names = {c.microsoft_calendar_id: c for c in calendars if c.microsoft_calendar_id}
    rows = {r.microsoft_calendar_id: r for r in subscriptions if r.microsoft_calendar_id}
    entries = []
    for cal_id in sorted(set(names) | set(rows), key=lambda c: (not _is_default(names.get(c), rows.get(c)), c)):
        row, calendar = rows.get(cal_id), names.get(cal_id)
        sub_id = row.subscription_id if row else None
        expiration = row.expiration if row else None
        if row is not None and row.state == "capped":
            state = "capped"
        else:
            state = subscription_state(sub_id, expiration, now)
            if state == "live" and alive is not None and sub_id not in alive:
                state = "missing"  # the row says live, Graph does not have it
        entries.append({"calendar_id": cal_id, "name": (calendar.name if calendar else None) or cal_id[:12],
                        "is_default": _is_default(calendar, row), "subscription_id": sub_id,
                        "expires_at": _iso(expiration), "state": state,
                        "error": row.last_error if row is not None else None})
    return entries


def _is_default(calendar: CalendarRow | None, row: CalendarSubscription | None) -> bool:
    return bool((calendar is not None and calendar.is_default_calendar) or (row is not None and row.is_default))


def _delta_mode(settings: Settings | None, account: AccountState | None) -> str:
    from shared.sync.events import DELTA_FLAG, delta_other_calendars

    if settings is None or account is None:
        return "delta"
    delta, _ = delta_other_calendars(settings, account)
    if delta:
        return "delta"
    flag = (account.extra or {}).get(DELTA_FLAG) or {}
    return "listing (Graph does not serve it: " + str(flag.get("error")) + ")" if flag else "listing (configured)"


def _parse_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def user_status(account: AccountState | None, user: UserRow | None, rows: dict[str, int], now: dt.datetime, *,
                calendars: list[dict[str, Any]] | None = None, settings: Settings | None = None) -> UserStatus:
    source = account if account is not None else user
    user_id = (source.microsoft_user_id if source is not None else None) or ""
    sub_id = user.events_subscription_id if user else None
    expiration = user.events_subscription_expiration if user else None
    state = subscription_state(sub_id, expiration, now)
    calendars = calendars or []
    covered = [c for c in calendars if c["state"] != "capped"]
    if covered:
        state = next((c["state"] for c in covered if c["state"] != "live"), "live")
    overall = SubscriptionStatus("events", sub_id, expiration, state)
    subscriptions = tuple(SubscriptionStatus(c["name"], c["subscription_id"], _parse_iso(c["expires_at"]), c["state"])
                          for c in calendars) or (overall,)
    extra = (account.extra if account else None) or {}
    status = (account.status if account else None) or "unknown"
    last_error = (account.last_sync_error if account else None) or extra.get("subscription_error") \
        or (account.quota_error if account else None)
    problems: list[str] = []
    notes: list[str] = []
    if status == "reauth_required":
        problems.append(f"must sign in again: {(account.status_reason if account else None) or 'grant rejected'}")
    if status == "linked" and not covered and state != "live":
        problems.append(f"subscription {state}" + (f" since {_iso(expiration)}" if state == "expired" else ""))
    for entry in calendars if status == "linked" else []:
        where = f"calendar {entry['name']}"
        if entry["state"] == "capped":
            text = f"{where}: over MAX_CALENDAR_SUBSCRIPTIONS, no subscription; only the safety-net sync covers it"
            resync = getattr(settings, "renewal_resync", True) if settings is not None else True
            (notes if resync else problems).append(text + ("" if resync else " and RENEWAL_RESYNC is off"))
        elif entry["state"] == "expired":
            problems.append(f"{where}: subscription expired since {entry['expires_at']}")
        elif entry["state"] == "missing":
            why = f" ({entry['error']})" if entry.get("error") else " (the next renewal run recreates it)"
            problems.append(f"{where}: subscription missing{why}")
    delta_mode = _delta_mode(settings, account)
    if delta_mode.startswith("listing (Graph"):
        notes.append(f"other calendars are listed in full each sync: {delta_mode}")
    if account is not None and account.quota_error:
        problems.append(f"subscription quota: {account.quota_error}")
    if account is not None and account.last_sync_error:
        problems.append(f"last sync failed: {account.last_sync_error}")
    elif extra.get("subscription_error"):
        problems.append(extra["subscription_error"])
    data = user.data if user else None
    return UserStatus(
        user_id=user_id, address=people.address(data), name=people.display_name(data), status=status,
        status_reason=account.status_reason if account else None,
        mode=(account.mode if account else None) or "delegated", subscriptions=subscriptions,
        last_sync_at=account.last_sync_at if account else None, last_error=last_error,
        last_error_at=account.last_error_at if account else None,
        rows={name: rows.get(name, 0) for name in _ROW_TABLES}, problems=tuple(problems),
        overall=overall, calendars=tuple(calendars), other_calendars=delta_mode, notes=tuple(notes),
    )


def queue_depths(settings: Settings | None = None) -> dict[str, int | str]:
    """Depth of every queue the app uses and of its poison queue; an unreachable queue shows its error."""
    from shared.queues import (
        NOTIFICATIONS_QUEUE,
        OUTBOUND_QUEUE,
        RENEWAL_QUEUE,
        SYNC_QUEUE,
        WEBHOOK_QUEUE,
        open_queue,
        poison_queue_name,
    )

    depths: dict[str, int | str] = {}
    for name in (SYNC_QUEUE, poison_queue_name(SYNC_QUEUE), OUTBOUND_QUEUE, poison_queue_name(OUTBOUND_QUEUE),
                 NOTIFICATIONS_QUEUE, WEBHOOK_QUEUE, poison_queue_name(WEBHOOK_QUEUE),
                 RENEWAL_QUEUE, poison_queue_name(RENEWAL_QUEUE)):
        try:
            depths[name] = open_queue(name, settings).depth()
        except Exception as exc:  # status must render even when the queue is down
            depths[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return depths


@dataclass(frozen=True)
class StatusReport:
    generated_at: dt.datetime
    users: tuple[UserStatus, ...]
    queues: dict[str, int | str]  # depth, or why it is unavailable
    webhooks: dict[str, Any] = field(default_factory=dict)  # per endpoint figures, or {"error": ...}
    renewal: dict[str, Any] | None = None  # the last renewal run's progress (None before the first run)

    @property
    def healthy(self) -> bool:
        from shared.queues import SYNC_QUEUE, poison_queue_name

        poison = self.queues.get(poison_queue_name(SYNC_QUEUE))
        return not any(u.problems for u in self.users) and isinstance(poison, int) and poison == 0

    def totals(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        by_subscription: dict[str, int] = {}
        for entry in self.users:
            by_status[entry.status] = by_status.get(entry.status, 0) + 1
            if entry.status == "linked":
                state = entry.events_subscription.state
                by_subscription[state] = by_subscription.get(state, 0) + 1
        return {
            "users": len(self.users), "by_status": by_status, "subscriptions": by_subscription,
            "rows": {name: sum(e.rows[name] for e in self.users) for name in _ROW_TABLES},
            "with_problems": sum(1 for e in self.users if e.problems),
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (GET /api/status, `status --json`)."""
        now = self.generated_at
        return {"generated_at": _iso(now), "healthy": self.healthy,
                "users": [u.as_dict(now) for u in self.users], "totals": self.totals(), "queues": self.queues,
                "webhooks": self.webhooks, "renewal": self.renewal}


def collect(settings: Settings | None = None, *, now: dt.datetime | None = None, user_id: str | None = None,
            check_graph: bool = True) -> StatusReport:
    """The status of every account (or of `user_id`) and of the queues; `check_graph` asks Graph which
    subscriptions still exist."""
    from shared.config import get_settings
    from shared.storage import open_repository

    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    repo = open_repository(settings)
    # `if ...microsoft_user_id`: the key of a stored row is always set; the test narrows its type.
    accounts = {a.microsoft_user_id: a for a in repo.list_accounts() if a.microsoft_user_id}
    users = {u.microsoft_user_id: u for u in repo.list_users() if u.microsoft_user_id}
    ids = sorted(set(accounts) | set(users))
    if user_id is not None:
        wanted = people.resolve(repo, user_id)
        ids = [i for i in ids if i == wanted]
    alive: dict[str, set[str] | None] = {}
    if check_graph:
        from shared.subscriptions.check import live_subscription_ids

        alive = live_subscription_ids([accounts[i] for i in ids if i in accounts], settings)
    subscriptions: dict[str, list[CalendarSubscription]] = {}
    if user_id is None:
        rows = repo.list_calendar_subscriptions()
    else:  # one user, or nobody when the filter names no account (never every user's rows)
        rows = repo.list_calendar_subscriptions(ids[0]) if ids else []
    for row in rows:
        if row.microsoft_user_id:
            subscriptions.setdefault(row.microsoft_user_id, []).append(row)
    entries = [user_status(accounts.get(i), users.get(i), repo.counts(i), now, settings=settings,
                           calendars=calendar_states(subscriptions.get(i, []), repo.list_calendars(i),
                                                     alive.get(i), now) if subscriptions.get(i) else [])
               for i in ids]
    entries.sort(key=lambda e: e.label.lower())
    return StatusReport(now, tuple(entries), queue_depths(settings), webhook_figures(settings),
                        renewal_progress(repo))


def renewal_progress(repo: Repository) -> dict[str, Any] | None:
    """The last renewal run: shards planned and done, outcomes, start and end (shared/subscriptions/progress.py)."""
    from shared.subscriptions.progress import last_run

    try:
        return last_run(repo)
    except Exception as exc:  # status must render even when the counters cannot be read
        return {"error": f"unavailable: {type(exc).__name__}: {exc}"[:300]}


def webhook_figures(settings: Settings) -> dict[str, Any]:
    """Per webhook endpoint: delivered, retried and dead-lettered deliveries (shared/feed/delivery.py)."""
    from shared.feed.delivery import figures

    try:
        return figures(settings)
    except Exception as exc:  # status must render even when the counters cannot be read
        return {"error": f"unavailable: {type(exc).__name__}: {exc}"[:300]}


def collect_status(settings: Settings | None = None, *, now: dt.datetime | None = None, user_id: str | None = None,
                   check_graph: bool = True) -> dict[str, Any]:
    """The status document (JSON-ready)."""
    return collect(settings, now=now, user_id=user_id, check_graph=check_graph).as_dict()


def render_text(report: StatusReport, *, error_width: int = 60) -> str:
    """The status as an aligned terminal table plus one line per problem."""
    now = report.generated_at
    lines = [f"status at {_iso(now)}: {'healthy' if report.healthy else 'ATTENTION NEEDED'}", ""]
    rows = []
    for entry in report.users:
        age = _age(entry.last_sync_at, now)
        rows.append((
            entry.label, entry.status, _subscriptions_cell(entry.subscriptions, now),
            f"{_duration(age)} ago" if age is not None else "never",
            str(entry.rows["microsoft_calendar_v1"]), str(entry.rows["microsoft_calendar_event_v1"]),
            table.clip(entry.last_error, error_width),
        ))
    if rows:
        lines += table.render(("user", "state", "subscriptions", "last sync", "calendars", "events", "last error"),
                        rows, right=frozenset({4, 5}))
    else:
        lines.append("no accounts linked yet")
    problems = [(e.label, p) for e in report.users for p in e.problems]
    if problems:
        lines += ["", "problems:"]
        lines += [f"  {who}: {problem}" for who, problem in problems]
    notes = [(e.label, n) for e in report.users for n in e.notes]
    if notes:
        lines += ["", "notes:"]
        lines += [f"  {who}: {note}" for who, note in notes]
    totals = report.totals()
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(totals["by_status"].items())) or "none"
    subs = ", ".join(f"{n} {s}" for s, n in sorted(totals["subscriptions"].items())) or "none"
    lines += ["", f"users: {totals['users']} ({by_status}); subscriptions: {subs}; rows: "
                  f"{totals['rows']['microsoft_calendar_v1']} calendars, "
                  f"{totals['rows']['microsoft_calendar_event_v1']} events"]
    lines.append("queues: " + ", ".join(f"{name} {depth}" for name, depth in report.queues.items()))
    for name, hook in report.webhooks.items():
        if isinstance(hook, dict):
            lines.append(f"webhook {name}: delivered {hook['delivered']}, retried {hook['retried']}, "
                         f"dead-lettered {hook['dead_lettered']}")
    lines.append(renewal_line(report.renewal))
    poison = [name for name, depth in report.queues.items() if name.endswith("-poison") and depth not in (0,)]
    if any(name.startswith("webhook-") for name in poison):
        lines.append("dead-lettered webhook deliveries: replay with `python -m shared replay-webhooks`")
    if poison:
        lines.append("poison messages are kept: inspect with `python -m shared replay-poison --dry-run`, "
                     "replay with `python -m shared replay-poison` once the cause is fixed")
    return "\n".join(lines)


def renewal_line(run: dict[str, Any] | None) -> str:
    """One line: the last renewal run's state, shards and outcomes."""
    if run is None:
        return "renewal: no run yet"
    if "error" in run:
        return f"renewal: {run['error']}"
    end = f", finished {run['finished_at']}" if run["finished_at"] else ""
    return (f"renewal run {run['run']} {run['state']}: shards {run['shards_done']}/{run['shards_planned']}, "
            f"{run['accounts']} accounts; renewed {run['renewed']}, recreated {run['recreated']}, "
            f"checked {run['checked']}, failed {run['failed']}, skipped {run['skipped']}; "
            f"started {run['started_at']}{end}")


def _subscriptions_cell(subscriptions: tuple[SubscriptionStatus, ...], now: dt.datetime) -> str:
    """One subscription in full; several (one per calendar) as a count, the first expiry and the odd ones."""
    if len(subscriptions) <= 1:
        return ", ".join(s.short(now) for s in subscriptions)
    live = [s for s in subscriptions if s.state == "live"]
    text = f"{len(live)}/{len(subscriptions)} calendars live"
    first = min(live, key=lambda s: s.expires_at or now, default=None)
    if first is not None and first.expires_at is not None:
        text += f", first expiry {first.expires_at.astimezone(dt.UTC):%m-%d %H:%MZ}"
    odd = [f"{s.resource} {s.state}" for s in subscriptions if s.state != "live"]
    return text + ("; " + ", ".join(odd) if odd else "")


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"

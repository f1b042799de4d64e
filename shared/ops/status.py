"""One picture of replication health, for `GET /api/status` and `python -m shared status`.

Per account: who it is (address, name), linked or reauth_required (and why),
its subscriptions and when each expires (or that it has expired), the last
successful sync and its age, the last error, rows per table. Then totals and
the depths of the sync, outbound and poison queues, so a message that failed
maxDequeueCount times is visible. The records are typed (`UserStatus`,
`SubscriptionStatus`); the JSON document and the terminal table are two
renderings of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shared.ops import table
from shared.storage import people

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
            return f"{self.resource} until {when} ({_duration(self.expires_in_minutes(now) * 60)})"
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

    @property
    def label(self) -> str:
        return self.address or self.name or self.user_id

    @property
    def events_subscription(self) -> SubscriptionStatus:
        return self.subscriptions[0]

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "address": self.address, "name": self.name,
            "status": self.status, "status_reason": self.status_reason, "mode": self.mode,
            "subscription": self.events_subscription.as_dict(now),  # the mailbox's me/events subscription
            "subscriptions": [s.as_dict(now) for s in self.subscriptions],
            "last_sync_at": _iso(self.last_sync_at), "last_sync_age_seconds": _age(self.last_sync_at, now),
            "last_error": self.last_error, "last_error_at": _iso(self.last_error_at),
            "rows": dict(self.rows), "problems": list(self.problems),
        }


def user_status(account: Any, user: Any, rows: dict[str, int], now: dt.datetime) -> UserStatus:
    user_id = (account or user).microsoft_user_id
    sub_id = user.events_subscription_id if user else None
    expiration = user.events_subscription_expiration if user else None
    events = SubscriptionStatus("events", sub_id, expiration, subscription_state(sub_id, expiration, now))
    extra = (account.extra if account else None) or {}
    status = (account.status if account else None) or "unknown"
    last_error = (account.last_sync_error if account else None) or extra.get("subscription_error") \
        or (account.quota_error if account else None)
    problems = []
    if status == "reauth_required":
        problems.append(f"must sign in again: {account.status_reason or 'grant rejected'}")
    if status == "linked" and events.state != "live":
        problems.append(f"subscription {events.state}"
                        + (f" since {_iso(expiration)}" if events.state == "expired" else ""))
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
        mode=(account.mode if account else None) or "delegated", subscriptions=(events,),
        last_sync_at=account.last_sync_at if account else None, last_error=last_error,
        last_error_at=account.last_error_at if account else None,
        rows={name: rows.get(name, 0) for name in _ROW_TABLES}, problems=tuple(problems),
    )


def queue_depths(settings=None) -> dict[str, Any]:
    """Depth of every queue the app uses and of its poison queue; an unreachable queue shows its error."""
    from shared.queues import (
        NOTIFICATIONS_QUEUE,
        OUTBOUND_QUEUE,
        SYNC_QUEUE,
        WEBHOOK_QUEUE,
        open_queue,
        poison_queue_name,
    )

    depths: dict[str, Any] = {}
    for name in (SYNC_QUEUE, poison_queue_name(SYNC_QUEUE), OUTBOUND_QUEUE, poison_queue_name(OUTBOUND_QUEUE),
                 NOTIFICATIONS_QUEUE, WEBHOOK_QUEUE, poison_queue_name(WEBHOOK_QUEUE)):
        try:
            depths[name] = open_queue(name, settings).depth()
        except Exception as exc:  # status must render even when the queue is down
            depths[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return depths


@dataclass(frozen=True)
class StatusReport:
    generated_at: dt.datetime
    users: tuple[UserStatus, ...]
    queues: dict[str, Any]
    webhooks: dict[str, Any] = field(default_factory=dict)  # per endpoint figures, or {"error": ...}

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
                "webhooks": self.webhooks}


def collect(settings=None, *, now: dt.datetime | None = None, user_id: str | None = None) -> StatusReport:
    """The status of every account (or of `user_id`) and of the queues."""
    from shared.config import get_settings
    from shared.storage import open_repository

    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    repo = open_repository(settings)
    accounts = {a.microsoft_user_id: a for a in repo.list_accounts()}
    users = {u.microsoft_user_id: u for u in repo.list_users()}
    ids = sorted(set(accounts) | set(users))
    if user_id is not None:
        wanted = people.resolve(repo, user_id)
        ids = [i for i in ids if i == wanted]
    entries = [user_status(accounts.get(i), users.get(i), repo.counts(i), now) for i in ids]
    entries.sort(key=lambda e: e.label.lower())
    return StatusReport(now, tuple(entries), queue_depths(settings), webhook_figures(settings))


def webhook_figures(settings) -> dict[str, Any]:
    """Per webhook endpoint: delivered, retried and dead-lettered deliveries (shared/feed/delivery.py)."""
    from shared.feed.delivery import figures

    try:
        return figures(settings)
    except Exception as exc:  # status must render even when the counters cannot be read
        return {"error": f"unavailable: {type(exc).__name__}: {exc}"[:300]}


def collect_status(settings=None, *, now: dt.datetime | None = None, user_id: str | None = None) -> dict[str, Any]:
    """The status document (JSON-ready)."""
    return collect(settings, now=now, user_id=user_id).as_dict()


def render_text(report: StatusReport, *, error_width: int = 60) -> str:
    """The status as an aligned terminal table plus one line per problem."""
    now = report.generated_at
    lines = [f"status at {_iso(now)}: {'healthy' if report.healthy else 'ATTENTION NEEDED'}", ""]
    rows = []
    for entry in report.users:
        age = _age(entry.last_sync_at, now)
        rows.append((
            entry.label, entry.status, ", ".join(s.short(now) for s in entry.subscriptions),
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
    poison = [name for name, depth in report.queues.items() if name.endswith("-poison") and depth not in (0,)]
    if any(name.startswith("webhook-") for name in poison):
        lines.append("dead-lettered webhook deliveries: replay with `python -m shared replay-webhooks`")
    if poison:
        lines.append("poison messages are kept: inspect with `python -m shared replay-poison --dry-run`, "
                     "replay with `python -m shared replay-poison` once the cause is fixed")
    return "\n".join(lines)


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

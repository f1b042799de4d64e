"""One picture of replication health, for `GET /api/status` and `python -m shared status`.

Per account: linked or reauth_required (and why), the subscription and when it
expires (or that it has expired), the last successful sync and its age, the
last error, rows per table. Then totals and the depths of the sync, outbound
and poison queues, so a message that failed maxDequeueCount times is visible.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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


def user_status(account: Any, user: Any, rows: dict[str, int], now: dt.datetime) -> dict[str, Any]:
    user_id = (account or user).microsoft_user_id
    sub_id = user.events_subscription_id if user else None
    expiration = user.events_subscription_expiration if user else None
    state = subscription_state(sub_id, expiration, now)
    extra = (account.extra if account else None) or {}
    status = (account.status if account else None) or "unknown"
    last_error = (account.last_sync_error if account else None) or extra.get("subscription_error") \
        or (account.quota_error if account else None)
    problems = []
    if status == "reauth_required":
        problems.append(f"must sign in again: {account.status_reason or 'grant rejected'}")
    if status == "linked" and state != "live":
        problems.append(f"subscription {state}" + (f" since {_iso(expiration)}" if state == "expired" else ""))
    if account is not None and account.quota_error:
        problems.append(f"subscription quota: {account.quota_error}")
    if account is not None and account.last_sync_error:
        problems.append(f"last sync failed: {account.last_sync_error}")
    elif extra.get("subscription_error"):
        problems.append(extra["subscription_error"])
    return {
        "user_id": user_id,
        "status": status,
        "status_reason": account.status_reason if account else None,
        "mode": (account.mode if account else None) or "delegated",
        "subscription": {
            "id": sub_id, "expires_at": _iso(expiration), "state": state,
            "expires_in_minutes": int((expiration - now).total_seconds() // 60) if expiration else None,
        },
        "last_sync_at": _iso(account.last_sync_at if account else None),
        "last_sync_age_seconds": _age(account.last_sync_at if account else None, now),
        "last_error": last_error,
        "last_error_at": _iso(account.last_error_at if account else None),
        "rows": {name: rows.get(name, 0) for name in _ROW_TABLES},
        "problems": problems,
    }


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


def collect_status(settings=None, *, now: dt.datetime | None = None, user_id: str | None = None) -> dict[str, Any]:
    """The status document (JSON-ready)."""
    from shared.config import get_settings
    from shared.queues import SYNC_QUEUE, poison_queue_name
    from shared.storage import open_repository

    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    repo = open_repository(settings)
    accounts = {a.microsoft_user_id: a for a in repo.list_accounts()}
    users = {u.microsoft_user_id: u for u in repo.list_users()}
    ids = sorted(set(accounts) | set(users))
    if user_id is not None:
        ids = [i for i in ids if i == user_id]
    entries = [user_status(accounts.get(i), users.get(i), repo.counts(i), now) for i in ids]
    by_status: dict[str, int] = {}
    by_subscription: dict[str, int] = {}
    for entry in entries:
        by_status[entry["status"]] = by_status.get(entry["status"], 0) + 1
        if entry["status"] == "linked":
            state = entry["subscription"]["state"]
            by_subscription[state] = by_subscription.get(state, 0) + 1
    queues = queue_depths(settings)
    poison = queues.get(poison_queue_name(SYNC_QUEUE))
    totals = {
        "users": len(entries),
        "by_status": by_status,
        "subscriptions": by_subscription,
        "rows": {name: sum(e["rows"][name] for e in entries) for name in _ROW_TABLES},
        "with_problems": sum(1 for e in entries if e["problems"]),
    }
    healthy = (totals["with_problems"] == 0 and isinstance(poison, int) and poison == 0)
    return {"generated_at": _iso(now), "healthy": healthy, "users": entries, "totals": totals, "queues": queues,
            "webhooks": webhook_figures(settings)}


def webhook_figures(settings) -> dict[str, Any]:
    """Per webhook endpoint: delivered, retried and dead-lettered deliveries (shared/feed/delivery.py)."""
    from shared.feed.delivery import figures

    try:
        return figures(settings)
    except Exception as exc:  # status must render even when the counters cannot be read
        return {"error": f"unavailable: {type(exc).__name__}: {exc}"[:300]}


def render_text(doc: dict[str, Any]) -> str:
    """The status as a terminal table plus one line per problem."""
    lines = [f"status at {doc['generated_at']}: {'healthy' if doc['healthy'] else 'ATTENTION NEEDED'}", ""]
    header = f"{'user':<38} {'status':<16} {'subscription':<30} {'last sync':<12} {'cals':>5} {'events':>7}"
    lines.append(header)
    lines.append("-" * len(header))
    for entry in doc["users"]:
        sub = entry["subscription"]
        sub_text = sub["state"] if sub["state"] != "live" else f"live, {_duration(sub['expires_in_minutes'] * 60)} left"
        age = entry["last_sync_age_seconds"]
        lines.append(f"{entry['user_id'][:38]:<38} {entry['status']:<16} {sub_text[:30]:<30} "
                     f"{(_duration(age) + ' ago') if age is not None else 'never':<12} "
                     f"{entry['rows']['microsoft_calendar_v1']:>5} {entry['rows']['microsoft_calendar_event_v1']:>7}")
    problems = [(e["user_id"], p) for e in doc["users"] for p in e["problems"]]
    if problems:
        lines += ["", "problems:"]
        lines += [f"  {user}: {problem}" for user, problem in problems]
    totals = doc["totals"]
    lines += ["", f"users {totals['users']} {totals['by_status']}, subscriptions {totals['subscriptions']}, "
                  f"rows {totals['rows']}"]
    lines.append("queues: " + ", ".join(f"{name} {depth}" for name, depth in doc["queues"].items()))
    for name, hook in doc.get("webhooks", {}).items():
        if isinstance(hook, dict):
            lines.append(f"webhook {name}: delivered {hook['delivered']}, retried {hook['retried']}, "
                         f"dead-lettered {hook['dead_lettered']}")
    poison = [name for name, depth in doc["queues"].items() if name.endswith("-poison") and depth not in (0,)]
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

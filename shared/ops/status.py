"""One picture of replication health, for `GET /api/status` and `python -m shared status`.

Per account: linked or reauth_required (and why), the subscription of every
calendar and when it expires -- or that it expired, is missing (checked against
Graph: a row can outlive a subscription deleted from outside) or that the calendar
is over the per-mailbox cap and only the safety-net sync covers it -- whether
other calendars are read by delta or listed, the last successful sync and its
age, the last error, rows per table. Then totals and the depths of the sync, outbound
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


def calendar_states(subscriptions: list[Any], calendars: list[Any], alive: set[str] | None,
                    now: dt.datetime) -> list[dict[str, Any]]:
    """One entry per replicated calendar: its subscription and whether Graph still holds it."""
    names = {c.microsoft_calendar_id: c for c in calendars}
    rows = {r.microsoft_calendar_id: r for r in subscriptions}
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


def _is_default(calendar: Any, row: Any) -> bool:
    return bool((calendar is not None and calendar.is_default_calendar) or (row is not None and row.is_default))


def _delta_mode(settings: Any, account: Any) -> str:
    from shared.sync.events import DELTA_FLAG, delta_other_calendars

    if settings is None or account is None:
        return "delta"
    delta, _ = delta_other_calendars(settings, account)
    if delta:
        return "delta"
    flag = (account.extra or {}).get(DELTA_FLAG) or {}
    return "listing (Graph does not serve it: " + str(flag.get("error")) + ")" if flag else "listing (configured)"


def user_status(account: Any, user: Any, rows: dict[str, int], now: dt.datetime, *,
                calendars: list[dict[str, Any]] | None = None, settings: Any = None) -> dict[str, Any]:
    user_id = (account or user).microsoft_user_id
    sub_id = user.events_subscription_id if user else None
    expiration = user.events_subscription_expiration if user else None
    state = subscription_state(sub_id, expiration, now)
    calendars = calendars or []
    covered = [c for c in calendars if c["state"] != "capped"]
    if covered:
        state = next((c["state"] for c in covered if c["state"] != "live"), "live")
    extra = (account.extra if account else None) or {}
    status = (account.status if account else None) or "unknown"
    last_error = (account.last_sync_error if account else None) or extra.get("subscription_error") \
        or (account.quota_error if account else None)
    problems = []
    if status == "reauth_required":
        problems.append(f"must sign in again: {account.status_reason or 'grant rejected'}")
    notes = []
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
        "calendars": calendars,
        "other_calendars": delta_mode,
        "rows": {name: rows.get(name, 0) for name in _ROW_TABLES},
        "problems": problems,
        "notes": notes,
    }


def queue_depths(settings=None) -> dict[str, Any]:
    """Depth of every queue the app uses and of its poison queue; an unreachable queue shows its error."""
    from shared.queues import OUTBOUND_QUEUE, SYNC_QUEUE, open_queue, poison_queue_name

    depths: dict[str, Any] = {}
    for name in (SYNC_QUEUE, poison_queue_name(SYNC_QUEUE), OUTBOUND_QUEUE, poison_queue_name(OUTBOUND_QUEUE)):
        try:
            depths[name] = open_queue(name, settings).depth()
        except Exception as exc:  # status must render even when the queue is down
            depths[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return depths


def collect_status(settings=None, *, now: dt.datetime | None = None, user_id: str | None = None,
                   check_graph: bool = True) -> dict[str, Any]:
    """The status document (JSON-ready); `check_graph` asks Graph which subscriptions still exist."""
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
    alive: dict[str, set[str] | None] = {}
    if check_graph:
        from shared.subscriptions.check import live_subscription_ids

        alive = live_subscription_ids([accounts[i] for i in ids if i in accounts], settings)
    subscriptions: dict[str, list[Any]] = {}
    for row in repo.list_calendar_subscriptions(user_id):
        subscriptions.setdefault(row.microsoft_user_id, []).append(row)
    entries = [user_status(accounts.get(i), users.get(i), repo.counts(i), now, settings=settings,
                           calendars=calendar_states(subscriptions.get(i, []), repo.list_calendars(i),
                                                     alive.get(i), now) if subscriptions.get(i) else [])
               for i in ids]
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
    return {"generated_at": _iso(now), "healthy": healthy, "users": entries, "totals": totals, "queues": queues}


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
    notes = [(e["user_id"], n) for e in doc["users"] for n in e.get("notes", [])]
    if notes:
        lines += ["", "notes:"]
        lines += [f"  {user}: {note}" for user, note in notes]
    totals = doc["totals"]
    lines += ["", f"users {totals['users']} {totals['by_status']}, subscriptions {totals['subscriptions']}, "
                  f"rows {totals['rows']}"]
    lines.append("queues: " + ", ".join(f"{name} {depth}" for name, depth in doc["queues"].items()))
    poison = [name for name, depth in doc["queues"].items() if name.endswith("-poison") and depth not in (0,)]
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

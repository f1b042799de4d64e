"""The renewal run: every linked account leaves it with a live subscription per calendar.

Per calendar subscription (`microsoft_calendar_subscription_v1`), from the stored id and expiry:
- none, or already expired -> create one and queue a resync (self-healing: the
  changes made while nothing listened were never notified);
- expiring before the horizon (next two timer runs + margin) -> PATCH the expiry;
- otherwise -> check it still exists (Graph drops subscriptions without telling,
  e.g. when a renewal was missed, or someone deleted it); a vanished one is
  recreated and that calendar resynced.
An account without any calendar subscription row gets them all (`ensure_subscriptions`);
calendars over the per-mailbox cap (`capped`) have none to renew.

Graph traffic is shaped for its limits. App-only accounts share the app token,
so their PATCHes go 20 to a `$batch` and one paged `GET /subscriptions` checks
them all. A delegated account needs its own token, so its requests go alone
(a batch cannot mix tokens); many mailboxes run at once in a thread pool while
the GraphClient keeps each mailbox at MAX_REQUESTS_PER_MAILBOX in flight.
Every subscription is handled on its own: one failure is recorded on that account
and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from shared.graph.paths import segment
from shared.subscriptions import limits
from shared.subscriptions.create import (
    CAPPED,
    LIVE,
    CalendarRef,
    SubscriptionError,
    SubscriptionQuotaError,
    create_subscription,
    ensure_subscriptions,
    failure,
    record_error,
    renew_one,
    store,
)

log = logging.getLogger(__name__)

RENEWED, RECREATED, CHECKED, FAILED, SKIPPED = "renewed", "recreated", "checked", "failed", "skipped"
BATCH_SIZE = 20
DEFAULT_WORKERS = 16


@dataclass
class RenewalReport:
    """What one run did, per subscription (`user/calendar`; `user` for an account subscribed as a whole).

    `checked`: not due and confirmed alive; `skipped`: the user must sign in again."""

    renewed: int = 0
    recreated: int = 0
    checked: int = 0
    failed: int = 0
    skipped: int = 0
    resynced: int = 0
    calendar_checks: int = 0  # RENEWAL_RESYNC off: calendar-list checks queued (new and gone calendars)
    elapsed: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # user/calendar -> renewed | recreated | ...

    def add(self, key: str, outcome: str, error: str | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.outcomes[key] = outcome
        if error:
            self.errors[key] = error

    def as_dict(self) -> dict[str, Any]:
        return {"renewed": self.renewed, "recreated": self.recreated, "checked": self.checked,
                "failed": self.failed, "skipped": self.skipped, "resynced": self.resynced,
                "calendar_checks": self.calendar_checks,
                "elapsed_seconds": round(self.elapsed, 3), "errors": dict(self.errors)}

    def summary(self) -> str:
        return (f"renewed {self.renewed}, recreated {self.recreated}, checked {self.checked}, "
                f"failed {self.failed}, skipped {self.skipped}, resync queued {self.resynced}, calendar-list checks "
                f"queued {self.calendar_checks} in {self.elapsed:.2f}s")


@dataclass(frozen=True)
class _Item:
    user_id: str
    account: Any
    subscription_id: str | None
    expiration: dt.datetime | None
    calendar: CalendarRef | None = None  # None: the account has no calendar subscriptions yet

    @property
    def key(self) -> str:
        return f"{self.user_id}/{self.calendar.id}" if self.calendar else self.user_id


def _guard(item: _Item, action: Callable[[], str], settings) -> tuple[str, str | None]:
    """Run one account's action; turn every failure into an outcome for that account only."""
    from shared.auth.errors import AuthError, ReauthRequired
    from shared.graph import GraphError

    try:
        outcome = action()
    except ReauthRequired as exc:
        return SKIPPED, str(exc)  # the token service already marked the account reauth_required
    except SubscriptionError as exc:
        return FAILED, str(exc)  # already recorded on the account by create/renew
    except (GraphError, AuthError) as exc:
        _record(item.user_id, f"renewal failed: {exc}", settings)
        return FAILED, str(exc)
    except Exception as exc:  # a bug or an outage for one account must not stop the others
        log.exception("renewal of user %s failed", item.user_id)
        _record(item.user_id, f"renewal failed: {type(exc).__name__}: {exc}", settings)
        return FAILED, f"{type(exc).__name__}: {exc}"
    if outcome == RECREATED:
        _resync(item, settings)
    return outcome, None


def _record(user_id: str, message: str, settings) -> None:
    try:
        from shared.storage import open_repository

        record_error(open_repository(settings), user_id, message)
    except Exception:
        log.exception("could not record the renewal error of user %s", user_id)


def _resync(item: _Item, settings) -> None:
    """A recreated subscription missed changes in between: a delta round of its calendar catches up."""
    from shared.queues.messages import SyncRequest, enqueue_sync

    calendar_id = item.calendar.id if item.calendar else None
    enqueue_sync(SyncRequest(item.user_id, "renewal", full=False, calendar_id=calendar_id), settings)


def _recreate(item: _Item, settings) -> Callable[[], str]:
    def run() -> str:
        if item.calendar is None:
            ensure_subscriptions(item.user_id, settings)
        else:
            create_subscription(item.user_id, settings, calendar=item.calendar)
        return RECREATED

    return run


def _renew_single(item: _Item, settings) -> Callable[[], str]:
    def run() -> str:
        assert item.subscription_id and item.calendar
        result = renew_one(item.user_id, item.calendar, item.subscription_id, settings)
        return RECREATED if result.created else RENEWED

    return run


def _check_single(item: _Item, settings) -> Callable[[], str]:
    """GET /subscriptions/{id} with the user's token; 404 -> recreate."""
    def run() -> str:
        from shared.graph import GraphError
        from shared.subscriptions.create import client_for

        try:
            client_for(item.user_id, settings).get(f"/subscriptions/{segment(item.subscription_id or '')}")
            return CHECKED
        except GraphError as exc:
            if exc.status != 404:
                raise
        log.warning("user %s: subscription %s vanished before its expiry; recreating", item.user_id,
                    item.subscription_id)
        return _recreate(item, settings)()

    return run


def _store_renewal(item: _Item, response: dict[str, Any], minutes: int, settings) -> None:
    from shared.storage import open_repository

    repo = open_repository(settings)
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    expiration = limits.parse_iso(body.get("expirationDateTime")) or limits.expiration_for(minutes)
    assert item.calendar is not None
    store(repo, item.user_id, item.calendar.id, item.subscription_id, expiration, state=LIVE, last_error=None)
    account = item.account
    if account is not None and ((account.extra or {}).get("subscription_error") or account.quota_error):
        record_error(repo, item.user_id, None)


def _batch_renew(items: list[_Item], settings) -> list[tuple[str, str, str | None]]:
    """PATCH up to 20 app-only subscriptions in one $batch; each answer handled on its own."""
    from shared.graph import app_client

    minutes = {i.key: limits.lifetime_minutes(settings, i.account.subscription_lifetime_minutes) for i in items}
    requests = [{"id": str(n), "method": "PATCH", "url": f"/subscriptions/{segment(item.subscription_id or '')}",
                 "body": {"expirationDateTime": limits.iso(limits.expiration_for(minutes[item.key]))}}
                for n, item in enumerate(items)]
    try:
        responses = app_client(settings).batch(requests)
    except Exception as exc:  # the whole batch failed: each account falls back to a request of its own
        log.warning("renewal batch of %d failed (%s); renewing one by one", len(items), exc)
        return [(i.key, *_guard(i, _renew_single(i, settings), settings)) for i in items]
    results = []
    for item, response in zip(items, responses, strict=True):
        status = int(response.get("status", 500))
        if 200 <= status < 300:
            def store(item=item, response=response) -> str:
                _store_renewal(item, response, minutes[item.key], settings)
                return RENEWED

            results.append((item.key, *_guard(item, store, settings)))
        elif status == 404:
            log.warning("user %s: subscription %s is gone (404); creating a new one", item.user_id,
                        item.subscription_id)
            results.append((item.key, *_guard(item, _recreate(item, settings), settings)))
        elif status == 400:
            # ExtensionError: renew_one learns the smaller limit and retries with it.
            results.append((item.key, *_guard(item, _renew_single(item, settings), settings)))
        else:
            error = _batch_error(response)

            def fail(item=item, error=error) -> str:
                from shared.storage import open_repository

                raise failure(open_repository(settings), item.user_id, error, "renewing the subscription")

            results.append((item.key, *_guard(item, fail, settings)))
    return results


def _batch_error(response: dict[str, Any]) -> Any:
    from shared.graph import GraphError
    from shared.graph.errors import parse_error_body

    code, message, request_id = parse_error_body(response.get("body"))
    status = int(response.get("status", 500))
    return GraphError(status, code or f"HTTP{status}", message or f"HTTP {status}", request_id=request_id,
                      method="PATCH", url="/subscriptions/{id} ($batch)")


def _list_app_subscriptions(settings) -> set[str]:
    """Ids of every subscription the app holds (app token, paged)."""
    from shared.graph import app_client

    return {s.get("id") for s in app_client(settings).iter_values("/subscriptions") if s.get("id")}


def _plan(repo: Any, settings, now: dt.datetime) -> tuple[list[_Item], list[_Item], list[_Item]]:
    """(to create, to renew, to check) among the calendar subscriptions of linked accounts."""
    rows: dict[str, list[Any]] = {}
    for row in repo.list_calendar_subscriptions():
        rows.setdefault(row.microsoft_user_id, []).append(row)
    horizon = limits.renewal_horizon(settings, now)
    create, renew, check = [], [], []
    for account in repo.list_accounts():
        if account.status != "linked":
            continue
        user_id = account.microsoft_user_id
        if not rows.get(user_id):
            create.append(_Item(user_id, account, None, None))
            continue
        for row in rows[user_id]:
            if row.state == CAPPED:
                continue
            item = _Item(user_id, account, row.subscription_id, row.expiration,
                         CalendarRef(row.microsoft_calendar_id, bool(row.is_default)))
            if not item.subscription_id or item.expiration is None or item.expiration <= now or row.state != LIVE:
                create.append(item)
            elif item.expiration <= horizon:
                renew.append(item)
            else:
                check.append(item)
    return create, renew, check


def _chunks(items: list[_Item], size: int) -> Iterable[list[_Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def renew_due(now: dt.datetime | None = None, *, settings=None, max_workers: int = DEFAULT_WORKERS,
              check_alive: bool = True) -> RenewalReport:
    """One renewal run over every linked account (the timer's body, also `python -m shared renew`)."""
    from shared.config import get_settings
    from shared.storage import open_repository

    started = time.monotonic()
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    report = RenewalReport()
    create, renew, check = _plan(open_repository(settings), settings, now)
    is_app = lambda item: item.account.mode == "app_only"  # noqa: E731

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="renew") as pool:
        singles: dict[Any, _Item] = {}
        batches = []
        for item in create:
            log.info("%s has no live subscription; creating one", item.key)
            singles[pool.submit(_guard, item, _recreate(item, settings), settings)] = item
        for item in (i for i in renew if not is_app(i)):
            singles[pool.submit(_guard, item, _renew_single(item, settings), settings)] = item
        app_due = [i for i in renew if is_app(i)]
        for chunk in _chunks(app_due, BATCH_SIZE):
            batches.append(pool.submit(_batch_renew, chunk, settings))
        if check_alive:
            for item in (i for i in check if not is_app(i)):
                singles[pool.submit(_guard, item, _check_single(item, settings), settings)] = item
            app_check = [i for i in check if is_app(i)]
            if app_check:
                _check_app(pool, app_check, settings, singles, report)
        else:
            for item in check:
                report.add(item.key, CHECKED)
        for future in as_completed(singles):
            report.add(singles[future].key, *future.result())
        for future in as_completed(batches):
            for user_id, outcome, error in future.result():
                report.add(user_id, outcome, error)
    if settings.renewal_resync:
        report.resynced = _safety_net(create + renew + check, report, settings)
    else:
        report.calendar_checks = _calendar_checks(create + renew + check, report, settings)
    report.elapsed = time.monotonic() - started
    log.info("subscription renewal: %s", report.summary())
    return report


def _safety_net(items: list[_Item], report: RenewalReport, settings) -> int:
    """A delta round for every account still linked (one whose subscriptions were all recreated
    already has its rounds queued; one that must sign in again cannot sync).

    Graph may lose a notification without sending `missed`, and calendars over the cap
    have no subscription: a sync per run bounds how long such a change stays unseen to
    one renewal period. A round without changes costs a request or two per calendar."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest

    outcomes: dict[str, set[str]] = {}
    for item in items:
        outcomes.setdefault(item.user_id, set()).add(report.outcomes.get(item.key, CHECKED))
    capped_only = [a.microsoft_user_id for a in _linked_without_items(items, settings)]
    users = [u for u, seen in outcomes.items() if SKIPPED not in seen and not seen <= {RECREATED}] + capped_only
    bodies = [SyncRequest(user, "renewal").to_json() for user in sorted(set(users))]
    return open_queue(SYNC_QUEUE, settings).send_many(bodies) if bodies else 0


def _calendar_checks(items: list[_Item], report: RenewalReport, settings) -> int:
    """Without the safety net, still one calendar-list read per account and run: a calendar created
    in a quiet mailbox gets its subscription and first round, a deleted one loses its subscription."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest

    skipped = {i.user_id for i in items if report.outcomes.get(i.key) == SKIPPED}
    users = {i.user_id for i in items} | {a.microsoft_user_id for a in _linked_without_items(items, settings)}
    bodies = [SyncRequest(user, "calendars").to_json() for user in sorted(users - skipped)]
    return open_queue(SYNC_QUEUE, settings).send_many(bodies) if bodies else 0


def _linked_without_items(items: list[_Item], settings) -> list[Any]:
    """Linked accounts whose every calendar is over the cap (nothing to renew, still to sync)."""
    from shared.storage import open_repository

    planned = {i.user_id for i in items}
    return [a for a in open_repository(settings).list_accounts()
            if a.status == "linked" and a.microsoft_user_id not in planned]


def _check_app(pool: ThreadPoolExecutor, items: list[_Item], settings, singles: dict[Any, _Item],
               report: RenewalReport) -> None:
    """One listing confirms every app-only subscription that is not due; vanished ones are recreated."""
    try:
        alive = _list_app_subscriptions(settings)
    except Exception as exc:
        log.warning("could not list the app's subscriptions (%s); checking one by one", exc)
        for item in items:
            singles[pool.submit(_guard, item, _check_single(item, settings), settings)] = item
        return
    for item in items:
        if item.subscription_id in alive:
            report.add(item.key, CHECKED)
        else:
            log.warning("%s: subscription %s vanished before its expiry; recreating", item.key,
                        item.subscription_id)
            singles[pool.submit(_guard, item, _recreate(item, settings), settings)] = item


__all__ = ["RenewalReport", "SubscriptionQuotaError", "renew_due"]

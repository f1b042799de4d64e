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
so their PATCHes go 20 to a `$batch`; those not due are checked by one paged
`GET /subscriptions` in a whole run (`renew_due`), or 20 to a `$batch` GET in a
shard of accounts (`renew_accounts`, the queue worker's body: shards.py). A
delegated account needs its own token, so its requests go alone (a batch cannot
mix tokens); many mailboxes run at once in a thread pool while the GraphClient
keeps each mailbox at MAX_REQUESTS_PER_MAILBOX in flight.
Every subscription is handled on its own: one failure is recorded on that account
and never stops the others.

One module for the whole run and a shard's run because both take the same decisions
(plan, batch, check, recreate) over a different set of accounts; splitting it would
separate a decision from the requests that carry it out.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph import GraphError
    from shared.storage.base import Repository
    from shared.storage.types import AccountState, CalendarSubscription

log = logging.getLogger(__name__)

RENEWED, RECREATED, CHECKED, FAILED, SKIPPED = "renewed", "recreated", "checked", "failed", "skipped"
OUTCOMES = (RENEWED, RECREATED, CHECKED, FAILED, SKIPPED)
BATCH_SIZE = 20
DEFAULT_WORKERS = 16
Result = tuple[str, str, str | None]  # (user/calendar, outcome, error)


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
    account: AccountState
    subscription_id: str | None
    expiration: dt.datetime | None
    calendar: CalendarRef | None = None  # None: the account has no calendar subscriptions yet

    @property
    def key(self) -> str:
        return f"{self.user_id}/{self.calendar.id}" if self.calendar else self.user_id

    @property
    def app_only(self) -> bool:
        return bool(self.account.mode == "app_only")


@dataclass
class _Plan:
    """What a run has to do: subscriptions to create, renew (due) and check (not due), and every linked
    account it covers (one whose calendars are all over the cap has no item but still gets its sync)."""

    create: list[_Item] = field(default_factory=list)
    renew: list[_Item] = field(default_factory=list)
    check: list[_Item] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[_Item]:
        return self.create + self.renew + self.check


def _guard(item: _Item, action: Callable[[], str], settings: Settings) -> tuple[str, str | None]:
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


def _guarded(item: _Item, action: Callable[[], str], settings: Settings) -> Result:
    return (item.key, *_guard(item, action, settings))


def _record(user_id: str, message: str, settings: Settings) -> None:
    try:
        from shared.storage import open_repository

        record_error(open_repository(settings), user_id, message)
    except Exception:
        log.exception("could not record the renewal error of user %s", user_id)


def _resync(item: _Item, settings: Settings) -> None:
    """A recreated subscription missed changes in between: a delta round of its calendar catches up."""
    from shared.queues.messages import SyncRequest, enqueue_sync

    calendar_id = item.calendar.id if item.calendar else None
    enqueue_sync(SyncRequest(item.user_id, "renewal", full=False, calendar_id=calendar_id), settings)


def _recreate(item: _Item, settings: Settings) -> Callable[[], str]:
    def run() -> str:
        if item.calendar is None:
            ensure_subscriptions(item.user_id, settings)
        else:
            create_subscription(item.user_id, settings, calendar=item.calendar)
        return RECREATED

    return run


def _renew_single(item: _Item, settings: Settings) -> Callable[[], str]:
    def run() -> str:
        assert item.subscription_id and item.calendar
        result = renew_one(item.user_id, item.calendar, item.subscription_id, settings)
        return RECREATED if result.created else RENEWED

    return run


def _vanished(item: _Item, settings: Settings) -> Callable[[], str]:
    def run() -> str:
        log.warning("%s: subscription %s vanished before its expiry; recreating", item.key, item.subscription_id)
        return _recreate(item, settings)()

    return run


def _check_single(item: _Item, settings: Settings) -> Callable[[], str]:
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
        return _vanished(item, settings)()

    return run


def _store_renewal(item: _Item, response: dict[str, Any], minutes: int, settings: Settings) -> None:
    from shared.storage import open_repository

    repo = open_repository(settings)
    raw = response.get("body")
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    expiration = limits.parse_iso(body.get("expirationDateTime")) or limits.expiration_for(minutes)
    assert item.calendar is not None
    store(repo, item.user_id, item.calendar.id, item.subscription_id, expiration, state=LIVE, last_error=None)
    account = item.account
    if account is not None and ((account.extra or {}).get("subscription_error") or account.quota_error):
        record_error(repo, item.user_id, None)


def _batch_renew(items: list[_Item], settings: Settings) -> list[Result]:
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
        return [_guarded(i, _renew_single(i, settings), settings) for i in items]
    results = []
    for item, response in zip(items, responses, strict=True):
        status = int(response.get("status", 500))
        if 200 <= status < 300:
            def stored(item: _Item = item, response: dict[str, Any] = response) -> str:
                _store_renewal(item, response, minutes[item.key], settings)
                return RENEWED

            results.append(_guarded(item, stored, settings))
        elif status == 404:
            log.warning("user %s: subscription %s is gone (404); creating a new one", item.user_id,
                        item.subscription_id)
            results.append(_guarded(item, _recreate(item, settings), settings))
        elif status == 400:
            # ExtensionError: renew_one learns the smaller limit and retries with it.
            results.append(_guarded(item, _renew_single(item, settings), settings))
        else:
            results.append(_guarded(item, _failed(item, _batch_error(response, "PATCH"), settings), settings))
    return results


def _batch_check(items: list[_Item], settings: Settings) -> list[Result]:
    """GET up to 20 app-only subscriptions in one $batch (a shard's check: listing every subscription of
    the app in each shard would cost more); 404 -> recreate, another error -> a GET of its own."""
    from shared.graph import app_client

    requests = [{"id": str(n), "method": "GET", "url": f"/subscriptions/{segment(item.subscription_id or '')}"}
                for n, item in enumerate(items)]
    try:
        responses = app_client(settings).batch(requests)
    except Exception as exc:
        log.warning("check batch of %d failed (%s); checking one by one", len(items), exc)
        return [_guarded(i, _check_single(i, settings), settings) for i in items]
    results: list[Result] = []
    for item, response in zip(items, responses, strict=True):
        status = int(response.get("status", 500))
        if 200 <= status < 300:
            results.append((item.key, CHECKED, None))
        elif status == 404:
            results.append(_guarded(item, _vanished(item, settings), settings))
        else:
            results.append(_guarded(item, _check_single(item, settings), settings))
    return results


def _failed(item: _Item, error: GraphError, settings: Settings) -> Callable[[], str]:
    def run() -> str:
        from shared.storage import open_repository

        raise failure(open_repository(settings), item.user_id, error, "renewing the subscription")

    return run


def _batch_error(response: dict[str, Any], method: str) -> GraphError:
    from shared.graph import GraphError
    from shared.graph.errors import parse_error_body

    code, message, request_id = parse_error_body(response.get("body"))
    status = int(response.get("status", 500))
    return GraphError(status, code or f"HTTP{status}", message or f"HTTP {status}", request_id=request_id,
                      method=method, url="/subscriptions/{id} ($batch)")


def _list_app_subscriptions(settings: Settings) -> set[str]:
    """Ids of every subscription the app holds (app token, paged)."""
    from shared.graph import app_client

    return {str(s["id"]) for s in app_client(settings).iter_values("/subscriptions") if s.get("id")}


def _plan(repo: Repository, settings: Settings, now: dt.datetime, user_ids: Iterable[str] | None = None) -> _Plan:
    """Sort the calendar subscriptions of linked accounts into create / renew / check: of every account
    (one read of all rows), or of `user_ids` only (a shard: one read per account)."""
    accounts: list[AccountState]
    rows: dict[str, list[CalendarSubscription]] = {}
    if user_ids is None:
        accounts = list(repo.list_accounts())
        for row in repo.list_calendar_subscriptions():
            if row.microsoft_user_id:  # the key of a stored row: always set
                rows.setdefault(row.microsoft_user_id, []).append(row)
    else:
        accounts = [a for a in (repo.get_account(u) for u in dict.fromkeys(user_ids)) if a is not None]
        rows = {a.microsoft_user_id: repo.list_calendar_subscriptions(a.microsoft_user_id) for a in accounts
                if a.status == "linked" and a.microsoft_user_id}
    horizon = limits.renewal_horizon(settings, now)
    plan = _Plan()
    for account in accounts:
        if account.status != "linked":
            continue
        user_id = account.microsoft_user_id
        if not user_id:  # the key of a stored account: always set
            continue
        plan.linked.append(user_id)
        if not rows.get(user_id):
            plan.create.append(_Item(user_id, account, None, None))
            continue
        for row in rows[user_id]:
            if row.state == CAPPED or not row.microsoft_calendar_id:  # the key is always set
                continue
            item = _Item(user_id, account, row.subscription_id, row.expiration,
                         CalendarRef(row.microsoft_calendar_id, bool(row.is_default)))
            if not item.subscription_id or item.expiration is None or item.expiration <= now or row.state != LIVE:
                plan.create.append(item)
            elif item.expiration <= horizon:
                plan.renew.append(item)
            else:
                plan.check.append(item)
    return plan


def _chunks(items: list[_Item], size: int) -> Iterable[list[_Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def renew_due(now: dt.datetime | None = None, *, settings: Settings | None = None,
              max_workers: int = DEFAULT_WORKERS, check_alive: bool = True) -> RenewalReport:
    """One renewal run over every linked account in this process (`python -m shared renew`; the timer
    fans out instead, see shared/subscriptions/shards.py)."""
    from shared.config import get_settings
    from shared.storage import open_repository

    started = time.monotonic()
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    plan = _plan(open_repository(settings), settings, now)
    return _run(plan, settings, started, max_workers=max_workers, check_alive=check_alive, list_app=True)


def renew_accounts(user_ids: Sequence[str], now: dt.datetime | None = None, *, settings: Settings | None = None,
                   max_workers: int = DEFAULT_WORKERS) -> RenewalReport:
    """The renewal run of some accounts only (one shard): the same machinery as `renew_due`, with the
    app-only subscriptions that are not due checked 20 to a `$batch` instead of by one listing."""
    from shared.config import get_settings
    from shared.storage import open_repository

    started = time.monotonic()
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    plan = _plan(open_repository(settings), settings, now, user_ids)
    return _run(plan, settings, started, max_workers=max_workers, check_alive=True, list_app=False)


def _run(plan: _Plan, settings: Settings, started: float, *, max_workers: int, check_alive: bool,
         list_app: bool) -> RenewalReport:
    report = RenewalReport()
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="renew") as pool:
        singles: list[Future[Result]] = []
        batches: list[Future[list[Result]]] = []
        for item in plan.create:
            log.info("%s has no live subscription; creating one", item.key)
            singles.append(pool.submit(_guarded, item, _recreate(item, settings), settings))
        for item in (i for i in plan.renew if not i.app_only):
            singles.append(pool.submit(_guarded, item, _renew_single(item, settings), settings))
        for chunk in _chunks([i for i in plan.renew if i.app_only], BATCH_SIZE):
            batches.append(pool.submit(_batch_renew, chunk, settings))
        if check_alive:
            for item in (i for i in plan.check if not i.app_only):
                singles.append(pool.submit(_guarded, item, _check_single(item, settings), settings))
            app_check = [i for i in plan.check if i.app_only]
            if app_check and list_app:
                _check_app(pool, app_check, settings, singles, report)
            else:
                for chunk in _chunks(app_check, BATCH_SIZE):
                    batches.append(pool.submit(_batch_check, chunk, settings))
        else:
            for item in plan.check:
                report.add(item.key, CHECKED)
        for single in as_completed(singles):
            report.add(*single.result())
        for batch in as_completed(batches):
            for key, outcome, error in batch.result():
                report.add(key, outcome, error)
    if settings.renewal_resync:
        report.resynced = _safety_net(plan, report, settings)
    else:
        report.calendar_checks = _calendar_checks(plan, report, settings)
    report.elapsed = time.monotonic() - started
    log.info("subscription renewal: %s", report.summary())
    return report


def _safety_net(plan: _Plan, report: RenewalReport, settings: Settings) -> int:
    """A delta round for every account still linked (one whose subscriptions were all recreated
    already has its rounds queued; one that must sign in again cannot sync).

    Graph may lose a notification without sending `missed`, and calendars over the cap
    have no subscription: a sync per run bounds how long such a change stays unseen to
    one renewal period. A round without changes costs a request or two per calendar."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest

    outcomes: dict[str, set[str]] = {user: set() for user in plan.linked}  # capped-only accounts: no outcome
    for item in plan.items:
        outcomes[item.user_id].add(report.outcomes.get(item.key, CHECKED))
    users = [u for u, seen in outcomes.items() if SKIPPED not in seen and not (seen and seen <= {RECREATED})]
    bodies = [SyncRequest(user, "renewal").to_json() for user in sorted(set(users))]
    return open_queue(SYNC_QUEUE, settings).send_many(bodies) if bodies else 0


def _calendar_checks(plan: _Plan, report: RenewalReport, settings: Settings) -> int:
    """Without the safety net, still one calendar-list read per account and run: a calendar created
    in a quiet mailbox gets its subscription and first round, a deleted one loses its subscription."""
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest

    skipped = {i.user_id for i in plan.items if report.outcomes.get(i.key) == SKIPPED}
    bodies = [SyncRequest(user, "calendars").to_json() for user in sorted(set(plan.linked) - skipped)]
    return open_queue(SYNC_QUEUE, settings).send_many(bodies) if bodies else 0


def _check_app(pool: ThreadPoolExecutor, items: list[_Item], settings: Settings,
               singles: list[Future[Result]], report: RenewalReport) -> None:
    """One listing confirms every app-only subscription that is not due; vanished ones are recreated."""
    try:
        alive = _list_app_subscriptions(settings)
    except Exception as exc:
        log.warning("could not list the app's subscriptions (%s); checking one by one", exc)
        for item in items:
            singles.append(pool.submit(_guarded, item, _check_single(item, settings), settings))
        return
    for item in items:
        if item.subscription_id in alive:
            report.add(item.key, CHECKED)
        else:
            singles.append(pool.submit(_guarded, item, _vanished(item, settings), settings))


__all__ = ["OUTCOMES", "RenewalReport", "SubscriptionQuotaError", "renew_accounts", "renew_due"]

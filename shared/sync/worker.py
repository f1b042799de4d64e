"""One SyncRequest from the queue: the entry point of the replication engine.

Order of work:
1. a lifecycle event is handed to the keep-alive area first (reauthorize or
   recreate the subscription); the resync it needs is this sync;
2. coalescing: a request is *covered* when the last successful sync started
   after the request was received (for `full` requests: the last successful
   full sync; for a calendar's request also the last successful round of that
   calendar) -- ten notifications queued together cost one delta round;
3. one sync per user at a time (`lock.py`); once the lock is held, the
   user's outbox left by an earlier run goes to the outbound queue first,
   then the coverage check is repeated;
4. calendars, then each calendar's events, page by page (the repository
   records each changed row in the outbox in the same transaction); a
   calendar's notification (`calendar_id`) runs that calendar's round only,
   plus the calendar list when it is stale (events.sync_one_calendar);
5. the outbox to the outbound queue; account state (`last_sync_*`), or the
   calendar's row (`sync_started_at`, `synced_at`) after a calendar's round;
6. every calendar's subscription is ensured (keep-alive area) after a sync that
   read the calendar list, or when asked; it costs no Graph call when all are live.

Failures: throttling, 5xx, network, database and queue errors propagate (the
host retries the message, then parks it in the poison queue); a malformed
message, an unlinked account, a revoked grant or a Graph 4xx are recorded and
dropped -- retrying could never make them succeed. A mailbox throttled with a
Retry-After over THROTTLE_REQUEUE_SECONDS does not hold its worker: the message
is sent again, invisible for that long, and this one ends (`deferred`), so
other mailboxes keep flowing; shorter waits are slept in the Graph client.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.graph.paths import segment
from shared.queues.messages import SyncRequest

if TYPE_CHECKING:  # imported lazily at run time: the notification endpoint imports this module
    from collections.abc import Callable

    from shared.config import Settings
    from shared.graph.errors import GraphError
    from shared.graph.protocol import GraphApi
    from shared.storage.base import Repository
    from shared.storage.types import AccountState

log = logging.getLogger("shared.sync")


@dataclass(frozen=True)
class Outcome:
    status: str          # synced | covered | deferred | dropped | skipped | reauth_required | failed
    detail: str = ""
    changes: int = 0
    delta_rounds: int = 0
    calendars_listed: bool = False


def handle_message(body: str | bytes, *, settings: Settings | None = None, repo: Repository | None = None,
                   graph: GraphApi | None = None) -> Outcome:
    """Parse and run one queue message; a malformed one is logged and dropped."""
    try:
        request = SyncRequest.from_json(body)
    except (ValueError, TypeError) as exc:
        log.error("dropping malformed sync message (%s): %.200r", exc, body)
        return Outcome("dropped", str(exc))
    return run(request, settings=settings, repo=repo, graph=graph)


def _now() -> datetime:
    return datetime.now(UTC)


def covered(account: AccountState, request: SyncRequest) -> bool:
    """True when a successful sync that started after `request` was received already did its work."""
    started, finished = account.last_sync_started_at, account.last_sync_at
    if started is None or finished is None or finished < started:
        return False  # never synced, or the last sync failed / is still running
    if request.full:
        full_started = ((account.extra or {}).get("sync") or {}).get("full_started_at")
        return bool(full_started) and float(full_started or 0) > request.received_at
    return started.timestamp() > request.received_at


def calendar_covered(repo: Repository, request: SyncRequest) -> bool:
    """A calendar's request is also covered by a successful round of that calendar started after it."""
    if request.calendar_id is None or request.full:
        return False
    row = repo.get_calendar_subscription(request.user_id, request.calendar_id)
    started, finished = (row.sync_started_at, row.synced_at) if row else (None, None)
    if started is None or finished is None or finished < started:
        return False
    return started.timestamp() > request.received_at


def _listed_at(account: AccountState | None) -> float | None:
    value = ((getattr(account, "extra", None) or {}).get("sync") or {}).get("calendars_listed_at")
    return float(value) if value else None


def mailbox_prefix(account: AccountState | None, user_id: str) -> str:
    if account is not None and account.mode == "app_only":
        return f"users/{segment(account.graph_user_id or user_id)}"
    return "me"


def run(request: SyncRequest, *, settings: Settings | None = None, repo: Repository | None = None,
        graph: GraphApi | None = None) -> Outcome:
    """Sync the user of `request` (see the module docstring for the order of work)."""
    from shared.config import get_settings

    settings = settings or get_settings()
    if repo is None:
        from shared.storage import open_repository

        repo = open_repository(settings)
    from shared.storage import people

    user = request.user_id
    who = people.label_of(repo, user)  # logs name the user by address, as status does
    account = repo.get_account(user)
    if account is None or account.status not in ("linked", None):
        status = getattr(account, "status", None) or "unknown"
        log.info("sync %s skipped: account is %s", who, status)
        return Outcome("skipped", f"account {status}")
    if request.lifecycle_event:
        if not _lifecycle(request, settings):
            return Outcome("reauth_required", "lifecycle handling found the grant revoked")
        # Changes made before a recreated subscription existed were never notified: only a round that
        # starts after the lifecycle handling may cover this request, not one that ran meanwhile.
        request = dataclasses.replace(request, received_at=time.time())

    from shared.sync import lock
    from shared.sync.outbound import publish_pending

    with lock.hold(user, repo, lease_seconds=settings.sync_lease_seconds):
        # The outbox of an earlier, failed run first; a queue error propagates and the message is retried.
        leftover = publish_pending(user, repo, settings=settings)
        if leftover:
            log.info("sync %s: %d changes left by an earlier run published", who, leftover)
        account = repo.get_account(user) or account
        if covered(account, request) or calendar_covered(repo, request):
            log.info("sync %s (%s) covered by the sync started at %s", who, request.reason,
                     account.last_sync_started_at)
            outcome = Outcome("covered")
        else:
            outcome = _sync(request, settings, repo, graph, account, who)
            account = repo.get_account(user) or account
            if outcome.status == "synced" and _scoped(request) and not (
                    covered(account, request) or calendar_covered(repo, request)):
                # It resumed rounds begun before this request was received: their snapshot cannot
                # hold the change this request announces, so one more (incremental) pass does.
                log.info("sync %s: the resumed rounds began before this request; one more pass", who)
                again = dataclasses.replace(request, full=False)  # incremental: the full round is done
                outcome = _sync(again, settings, repo, graph, account, who)
    if outcome.status in ("synced", "covered"):
        _subscribe(request, repo, outcome)
    return outcome


def _publisher(user: str, repo: Repository, settings: Settings, who: str) -> Callable[[], None]:
    """Publishing between pages of a round, while the next page is on its way from Graph.

    A failure leaves the changes in the outbox for the publish that ends the sync (whose error the
    sync message's retry handles) and stops publishing between pages for the rest of this sync: a
    queue outage must not stop rows from being stored.
    """
    from shared.sync.outbound import publish_pending

    failed = False

    def publish() -> None:
        nonlocal failed
        if failed:
            return
        try:
            publish_pending(user, repo, settings=settings)
        except Exception as exc:
            failed = True
            log.warning("sync %s: publishing between pages failed (%s: %s); the changes wait in the outbox "
                        "for the end of the sync", who, type(exc).__name__, exc)

    return publish


def _sync(request: SyncRequest, settings: Settings, repo: Repository, graph: GraphApi | None, account: AccountState,
          who: str) -> Outcome:
    from shared.auth.errors import ReauthRequired
    from shared.graph import GraphError, ThrottledError
    from shared.sync.calendars import sync_calendars
    from shared.sync.context import SyncContext
    from shared.sync.events import delta_other_calendars, sync_events, sync_new_calendars, sync_one_calendar
    from shared.sync.outbound import publish_pending
    from shared.sync.progress import Progress
    from shared.sync.window import current_window

    user = request.user_id
    calendar_id = request.calendar_id if not request.full else None
    whole = not calendar_id and not (request.reason == "calendars" and not request.full)  # every calendar's round
    started_wall = time.time()
    if calendar_id or whole:  # only such a round may cover requests (coalescing)
        if calendar_id:
            row = repo.get_calendar_subscription(user, calendar_id)
            started = _effective_start(row.sync_started_at, row.synced_at) if row else None
        else:
            started = _effective_start(account.last_sync_started_at, account.last_sync_at)
        if started is None:
            started = _now()
            if calendar_id:
                repo.update_calendar_subscription(user, calendar_id, sync_started_at=started)
            else:
                repo.update_account(user, last_sync_started_at=started)
        else:
            log.info("sync %s: the sync started at %s did not finish; its rounds are resumed, so this sync"
                     " covers only requests received before then", who, started)
        started_wall = started.timestamp()
    if graph is None:
        from shared.graph import client_for_user

        graph = client_for_user(user, settings, defer_retry_after=settings.throttle_requeue_seconds)
    ctx = SyncContext(user, repo, graph, settings, current_window(settings), prefix=mailbox_prefix(account, user),
                      full=request.full, progress=Progress(who))
    ctx.delta_other, ctx.detect_delta = delta_other_calendars(settings, account)
    ctx.publish_ahead = _publisher(user, repo, settings, who)
    listed, found = True, True

    def on_listed(calendars: list[dict[str, Any]]) -> None:
        _subscribe_listed(user, repo, calendars)

    try:
        if calendar_id:
            done = sync_one_calendar(ctx, calendar_id, _listed_at(account), on_listed)
            listed, found = done.listed, done.found
        elif not whole:
            sync_new_calendars(ctx, on_listed)
        else:
            calendars = sync_calendars(ctx)
            on_listed(calendars)
            sync_events(ctx, calendars)
    except ReauthRequired as exc:
        log.warning("sync %s stopped: %s", who, exc)
        return Outcome("reauth_required", str(exc))
    except GraphError as exc:
        _record_error(repo, user, exc)
        transient = exc.status is None or exc.status >= 500 or isinstance(exc, ThrottledError) or exc.status == 429
        if transient and _defer(request, exc, settings):
            return Outcome("deferred", f"throttled: retry after {exc.retry_after:.0f}s")
        if transient:
            raise
        log.error("sync %s failed for good: %s", who, exc)
        return Outcome("failed", str(exc))
    except Exception as exc:
        _record_error(repo, user, exc)
        raise
    finally:
        ctx.progress.close()
    sent = publish_pending(user, repo, settings=settings)
    changes: dict[str, Any] = {"last_sync_at": _now(), "last_sync_error": None} if whole else {}
    if request.full or listed:
        extra = dict((repo.get_account(user) or account).extra or {})  # re-read: the round may have noted things
        marks = {"calendars_listed_at": started_wall} if listed else {}
        if request.full:
            marks["full_started_at"] = started_wall
        extra["sync"] = {**(extra.get("sync") or {}), **marks}
        changes["extra"] = extra
    if changes:
        repo.update_account(user, **changes)
    if calendar_id and found:
        repo.update_calendar_subscription(user, calendar_id, synced_at=_now())
    scope = f"calendar {calendar_id}" if calendar_id else "all calendars"
    log.info("sync %s (%s, %s) done: %s, %d changed rows", who, request.reason, scope, ctx.progress.summary(), sent)
    return Outcome("synced", ctx.progress.summary(), sent, ctx.delta_rounds, calendars_listed=listed)


def _effective_start(started: datetime | None, finished: datetime | None) -> datetime | None:
    """When the last sync (of the account, or of the calendar) did not finish (killed, failed), the
    time it started: this sync resumes the rounds it began (stored nextLinks), so it covers nothing
    received after that. None when the last one finished: this sync's own start counts."""
    if started is not None and (finished is None or finished < started):
        return started
    return None


def _scoped(request: SyncRequest) -> bool:
    """A request that a sync can cover: every calendar, or one calendar (not the calendar-list check)."""
    return bool(request.full or request.calendar_id or request.reason != "calendars")


MAX_DEFER_SECONDS = 3600  # a Retry-After beyond an hour is treated as an hour


def _defer(request: SyncRequest, exc: GraphError, settings: Settings) -> bool:
    """Re-queue `request` invisible for the Retry-After of a long throttle; False when the wait is
    short (the host's retry is quicker) or the queue cannot take it (the error then propagates)."""
    retry_after = exc.retry_after
    if retry_after is None or retry_after <= settings.throttle_requeue_seconds:
        return False
    from shared.queues import SYNC_QUEUE, open_queue

    delay = int(min(retry_after, MAX_DEFER_SECONDS)) + 1
    try:
        open_queue(SYNC_QUEUE, settings).send(request.to_json(), delay_seconds=delay)
    except Exception as queue_error:
        log.error("sync %s throttled for %ss and not re-queued (%s: %s)", request.user_id, delay,
                  type(queue_error).__name__, queue_error)
        return False
    log.warning("sync %s throttled by Graph (Retry-After %.0fs): re-queued to run in %ds; the worker is"
                " free for other mailboxes", request.user_id, retry_after, delay)
    return True


def _record_error(repo: Repository, user: str, exc: BaseException) -> None:
    try:
        repo.update_account(user, last_sync_error=f"{type(exc).__name__}: {exc}"[:1000], last_error_at=_now())
    except Exception:  # the database may be what failed; the original error matters more
        log.exception("sync %s: could not record the error", user)


def _lifecycle(request: SyncRequest, settings: Settings) -> bool:
    """Reauthorize or recreate the subscription; False when the user's grant is revoked."""
    from shared.auth.errors import ReauthRequired
    from shared.subscriptions.lifecycle import handle_lifecycle

    try:
        handle_lifecycle(request, settings)
    except ReauthRequired as exc:
        log.warning("lifecycle %s for user %s: %s", request.lifecycle_event, request.user_id, exc)
        return False
    except Exception as exc:  # the resync still helps; the renewal timer heals the subscription
        log.error("lifecycle %s for user %s not handled (%s: %s); resyncing anyway", request.lifecycle_event,
                  request.user_id, type(exc).__name__, exc)
    return True


def _subscribe_listed(user_id: str, repo: Repository, calendars: list[dict[str, Any]]) -> None:
    """Calendars just listed that have no subscription row (new), or rows of calendars no longer
    listed: subscriptions follow before any event is read, so a change made meanwhile is notified."""
    rows = {r.microsoft_calendar_id for r in repo.list_calendar_subscriptions(user_id)}
    listed = {c["id"] for c in calendars}
    if not rows or rows == listed:
        return  # first sync of the account (subscribed after it), or nothing appeared or went
    from shared.subscriptions import ensure_subscriptions

    try:
        ensure_subscriptions(user_id, repo=repo)
    except Exception as exc:  # the rows still sync; the renewal timer heals a missing subscription
        log.error("sync %s: subscriptions of new calendars not ensured (%s: %s)", user_id, type(exc).__name__, exc)


def _subscribe(request: SyncRequest, repo: Repository, outcome: Outcome) -> None:
    """Every calendar's subscription, after a sync that read the calendar list (calendars may have
    appeared or gone), when asked, or when the notified calendar's subscription is not live."""
    if not (request.subscribe or outcome.calendars_listed):
        rows = repo.list_calendar_subscriptions(request.user_id)
        if rows and (request.calendar_id is None
                     or any(r.microsoft_calendar_id == request.calendar_id and r.subscription_id for r in rows)):
            return
    from shared.subscriptions import ensure_subscriptions

    try:
        ensure_subscriptions(request.user_id)
    except Exception as exc:  # the rows are synced; the renewal timer heals a missing subscription
        log.error("sync %s: subscriptions not ensured (%s: %s); the renewal timer will retry", request.user_id,
                  type(exc).__name__, exc)

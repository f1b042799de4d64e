"""One SyncRequest from the queue: the entry point of the replication engine.

Order of work:
1. a lifecycle event is handed to the keep-alive area first (reauthorize or
   recreate the subscription); the resync it needs is this sync;
2. coalescing: a request is *covered* when the last successful sync started
   after the request was received (for `full` requests: the last successful
   full sync) -- ten notifications queued together cost one delta round;
3. one sync per user at a time (`lock.py`); once the lock is held, the
   user's outbox left by an earlier run goes to the outbound queue first,
   then the coverage check is repeated;
4. calendars, then each calendar's events, page by page (the repository
   records each changed row in the outbox in the same transaction);
5. the outbox to the outbound queue; account state (`last_sync_*`);
6. the events subscription is created when asked or missing (keep-alive area).

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.queues.messages import SyncRequest

log = logging.getLogger("shared.sync")


@dataclass(frozen=True)
class Outcome:
    status: str          # synced | covered | deferred | dropped | skipped | reauth_required | failed
    detail: str = ""
    changes: int = 0
    delta_rounds: int = 0


def handle_message(body: str | bytes, **kwargs: Any) -> Outcome:
    """Parse and run one queue message; a malformed one is logged and dropped."""
    try:
        request = SyncRequest.from_json(body)
    except (ValueError, TypeError) as exc:
        log.error("dropping malformed sync message (%s): %.200r", exc, body)
        return Outcome("dropped", str(exc))
    return run(request, **kwargs)


def _now() -> datetime:
    return datetime.now(UTC)


def covered(account: Any, request: SyncRequest) -> bool:
    """True when a successful sync that started after `request` was received already did its work."""
    started, finished = account.last_sync_started_at, account.last_sync_at
    if started is None or finished is None or finished < started:
        return False  # never synced, or the last sync failed / is still running
    if request.full:
        full_started = ((account.extra or {}).get("sync") or {}).get("full_started_at")
        return bool(full_started) and float(full_started) > request.received_at
    return started.timestamp() > request.received_at


def mailbox_prefix(account: Any, user_id: str) -> str:
    if getattr(account, "mode", None) == "app_only":
        return f"users/{account.graph_user_id or user_id}"
    return "me"


def run(request: SyncRequest, *, settings: Any = None, repo: Any = None, graph: Any = None,
        crash_after_pages: int | None = None) -> Outcome:
    """Sync the user of `request` (see the module docstring for the order of work)."""
    from shared.config import get_settings

    settings = settings or get_settings()
    if repo is None:
        from shared.storage import open_repository

        repo = open_repository(settings)
    user = request.user_id
    account = repo.get_account(user)
    if account is None or account.status not in ("linked", None):
        status = getattr(account, "status", None) or "unknown"
        log.info("sync %s skipped: account is %s", user, status)
        return Outcome("skipped", f"account {status}")
    if request.lifecycle_event and not _lifecycle(request, settings):
        return Outcome("reauth_required", "lifecycle handling found the grant revoked")

    from shared.sync import lock
    from shared.sync.outbound import publish_pending

    with lock.hold(user, repo, lease_seconds=settings.sync_lease_seconds):
        # The outbox of an earlier, failed run first; a queue error propagates and the message is retried.
        leftover = publish_pending(user, repo, settings=settings)
        if leftover:
            log.info("sync %s: %d changes left by an earlier run published", user, leftover)
        account = repo.get_account(user) or account
        if covered(account, request):
            log.info("sync %s (%s) covered by the sync started at %s", user, request.reason,
                     account.last_sync_started_at)
            outcome = Outcome("covered")
        else:
            outcome = _sync(request, settings, repo, graph, account, crash_after_pages)
            account = repo.get_account(user) or account
            if outcome.status == "synced" and not covered(account, request):
                # It resumed rounds begun before this request was received: their snapshot cannot
                # hold the change this request announces, so one more (incremental) pass does.
                log.info("sync %s: the resumed rounds began before this request; one more pass", user)
                again = dataclasses.replace(request, full=False)  # incremental: the full round is done
                outcome = _sync(again, settings, repo, graph, account, crash_after_pages)
    if outcome.status in ("synced", "covered"):
        _subscribe(request, repo)
    return outcome


def _sync(request: SyncRequest, settings: Any, repo: Any, graph: Any, account: Any,
          crash_after_pages: int | None) -> Outcome:
    from shared.auth.errors import ReauthRequired
    from shared.graph import GraphError, ThrottledError
    from shared.sync.calendars import sync_calendars
    from shared.sync.context import SyncContext
    from shared.sync.events import sync_events
    from shared.sync.outbound import publish_pending
    from shared.sync.progress import Progress
    from shared.sync.window import current_window

    user = request.user_id
    started = _effective_start(account)
    if started is None:
        started = _now()
        repo.update_account(user, last_sync_started_at=started)
    else:
        log.info("sync %s: the sync started at %s did not finish; its rounds are resumed, so this sync"
                 " covers only requests received before then", user, started)
    started_wall = started.timestamp()
    if graph is None:
        from shared.graph import client_for_user

        graph = client_for_user(user, settings, defer_retry_after=settings.throttle_requeue_seconds)
    ctx = SyncContext(user, repo, graph, settings, current_window(settings), prefix=mailbox_prefix(account, user),
                      full=request.full, progress=Progress(user), crash_after_pages=crash_after_pages)
    try:
        calendars = sync_calendars(ctx)
        sync_events(ctx, calendars)
    except ReauthRequired as exc:
        log.warning("sync %s stopped: %s", user, exc)
        return Outcome("reauth_required", str(exc))
    except GraphError as exc:
        _record_error(repo, user, exc)
        transient = exc.status is None or exc.status >= 500 or isinstance(exc, ThrottledError) or exc.status == 429
        if transient and _defer(request, exc, settings):
            return Outcome("deferred", f"throttled: retry after {exc.retry_after:.0f}s")
        if transient:
            raise
        log.error("sync %s failed for good: %s", user, exc)
        return Outcome("failed", str(exc))
    except Exception as exc:
        _record_error(repo, user, exc)
        raise
    finally:
        ctx.progress.close()
    sent = publish_pending(user, repo, settings=settings)
    changes: dict[str, Any] = {"last_sync_at": _now(), "last_sync_error": None}
    if request.full:
        extra = dict(account.extra or {})
        extra["sync"] = {**(extra.get("sync") or {}), "full_started_at": started_wall}
        changes["extra"] = extra
    repo.update_account(user, **changes)
    log.info("sync %s (%s) done: %s, %d changed rows", user, request.reason, ctx.progress.summary(), sent)
    return Outcome("synced", ctx.progress.summary(), sent, ctx.delta_rounds)


def _effective_start(account: Any) -> datetime | None:
    """When the last sync did not finish (killed, failed), the time it started: this sync resumes
    the rounds it began (stored nextLinks), so it covers nothing received after that. None when
    the last sync finished: this sync's own start counts."""
    started, finished = account.last_sync_started_at, account.last_sync_at
    if started is not None and (finished is None or finished < started):
        return started
    return None


MAX_DEFER_SECONDS = 3600  # a Retry-After beyond an hour is treated as an hour


def _defer(request: SyncRequest, exc: Any, settings: Any) -> bool:
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


def _record_error(repo: Any, user: str, exc: BaseException) -> None:
    try:
        repo.update_account(user, last_sync_error=f"{type(exc).__name__}: {exc}"[:1000], last_error_at=_now())
    except Exception:  # the database may be what failed; the original error matters more
        log.exception("sync %s: could not record the error", user)


def _lifecycle(request: SyncRequest, settings: Any) -> bool:
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


def _subscribe(request: SyncRequest, repo: Any) -> None:
    """Create the events subscription when asked, or when the user has none alive."""
    if not request.subscribe:
        user = repo.get_user(request.user_id)
        expiry = getattr(user, "events_subscription_expiration", None)
        if user is not None and user.events_subscription_id and expiry is not None and expiry > _now():
            return
    from shared.subscriptions import ensure_subscription

    try:
        ensure_subscription(request.user_id)
    except Exception as exc:  # the rows are synced; the renewal timer heals a missing subscription
        log.error("sync %s: subscription not ensured (%s: %s); the renewal timer will retry", request.user_id,
                  type(exc).__name__, exc)

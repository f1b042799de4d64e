"""What a lifecycle notification does to the subscription (the worker resyncs afterwards).

- `reauthorizationRequired`: Graph pauses delivery until the app proves it still
  has access. POST /subscriptions/{id}/reauthorize with a fresh token; 404 means
  it is already gone -> a new one.
- `subscriptionRemoved` (password reset, device compliance, ...): a new subscription.
- `missed`: nothing to do here; the delta resync the worker runs catches up.

Each calendar has its own subscription, so the routing names the calendar and only
that subscription is touched. Lifecycle items can arrive twice (at-least-once
delivery) or late. An event about a subscription that is no longer the calendar's
current one is ignored, so a duplicate `subscriptionRemoved` never leaves two
subscriptions behind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.graph.paths import segment

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.queues.messages import SyncRequest
    from shared.storage.base import Repository
    from shared.storage.types import CalendarSubscription
    from shared.subscriptions.create import CalendarRef

log = logging.getLogger(__name__)

REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
SUBSCRIPTION_REMOVED = "subscriptionRemoved"
MISSED = "missed"


def _calendar(repo: Repository, user_id: str, calendar_id: str) -> tuple[CalendarSubscription | None, CalendarRef]:
    from shared.subscriptions.create import CalendarRef

    row = repo.get_calendar_subscription(user_id, calendar_id)
    return row, CalendarRef(calendar_id, bool(row and row.is_default))


def handle_lifecycle(request: SyncRequest, settings: Settings | None = None) -> None:
    """Act on `request.lifecycle_event` for `request.user_id` (a SyncRequest).

    A calendar's subscription (`request.calendar_id`) is reauthorized or recreated
    alone; an account-wide one from an earlier version is replaced by per-calendar
    ones (`ensure_subscriptions`). Raises ReauthRequired when the user's grant is dead
    (the account is marked; the worker stops there), SubscriptionError when Graph refuses."""
    from shared.config import get_settings
    from shared.graph import GraphError
    from shared.storage import open_repository
    from shared.subscriptions.create import client_for, create_subscription, ensure_subscriptions

    settings = settings or get_settings()
    event = request.lifecycle_event
    if event in (None, MISSED):
        return
    repo = open_repository(settings)
    user_id = request.user_id
    account = repo.get_account(user_id)
    if account is not None and account.status != "linked":
        log.info("lifecycle %s for user %s ignored: account is %s", event, user_id, account.status)
        return
    if request.calendar_id is None:
        log.warning("user %s: lifecycle %s of an account-wide subscription; moving to per-calendar ones",
                    user_id, event)
        ensure_subscriptions(user_id, settings, repo=repo)
        return
    row, calendar = _calendar(repo, user_id, request.calendar_id)
    current = row.subscription_id if row else None
    if request.subscription_id and current and current != request.subscription_id:
        log.info("lifecycle %s for user %s is about subscription %s, not calendar %s's current one; ignored",
                 event, user_id, request.subscription_id, request.calendar_id)
        return
    if row is None:
        log.info("lifecycle %s for user %s: calendar %s is not replicated (any more); ignored", event, user_id,
                 request.calendar_id)
        return
    sub_id = request.subscription_id or current
    if event == SUBSCRIPTION_REMOVED or not sub_id:
        log.warning("user %s: subscription %s removed by Graph; creating a new one", user_id, sub_id)
        create_subscription(user_id, settings, repo=repo, calendar=calendar)
        return
    if event == REAUTHORIZATION_REQUIRED:
        try:
            client_for(user_id, settings).post(f"/subscriptions/{segment(sub_id)}/reauthorize")
            log.info("user %s: subscription %s reauthorized", user_id, sub_id)
        except GraphError as exc:
            if exc.status != 404:
                raise
            log.warning("user %s: subscription %s gone at reauthorization; creating a new one", user_id, sub_id)
            create_subscription(user_id, settings, repo=repo, calendar=calendar)
        return
    log.warning("unknown lifecycle event %r for user %s; only resyncing", event, user_id)

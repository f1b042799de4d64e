"""What a lifecycle notification does to the subscription (the worker resyncs afterwards).

- `reauthorizationRequired`: Graph pauses delivery until the app proves it still
  has access. POST /subscriptions/{id}/reauthorize with a fresh token; 404 means
  it is already gone -> a new one.
- `subscriptionRemoved` (password reset, device compliance, ...): a new subscription.
- `missed`: nothing to do here; the delta resync the worker runs catches up.

Lifecycle items can arrive twice (at-least-once delivery) or late. An event
about a subscription that is no longer the account's current one is ignored,
so a duplicate `subscriptionRemoved` never leaves two subscriptions behind.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.graph.paths import segment

log = logging.getLogger(__name__)

REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
SUBSCRIPTION_REMOVED = "subscriptionRemoved"
MISSED = "missed"


def _is_current(user: Any, subscription_id: str | None) -> bool:
    current = user.events_subscription_id if user else None
    return not subscription_id or not current or current == subscription_id


def handle_lifecycle(request: Any, settings=None) -> None:
    """Act on `request.lifecycle_event` for `request.user_id` (a SyncRequest).

    Raises ReauthRequired when the user's grant is dead (the account is marked;
    the worker stops there), SubscriptionError when Graph refuses."""
    from shared.config import get_settings
    from shared.graph import GraphError
    from shared.storage import open_repository
    from shared.subscriptions.create import client_for, create_subscription

    settings = settings or get_settings()
    event = request.lifecycle_event
    if event in (None, MISSED):
        return
    repo = open_repository(settings)
    user = repo.get_user(request.user_id)
    account = repo.get_account(request.user_id)
    if account is not None and account.status != "linked":
        log.info("lifecycle %s for user %s ignored: account is %s", event, request.user_id, account.status)
        return
    if not _is_current(user, request.subscription_id):
        log.info("lifecycle %s for user %s is about subscription %s, not the current one; ignored",
                 event, request.user_id, request.subscription_id)
        return
    sub_id = request.subscription_id or (user.events_subscription_id if user else None)
    if event == SUBSCRIPTION_REMOVED or not sub_id:
        log.warning("user %s: subscription %s removed by Graph; creating a new one", request.user_id, sub_id)
        create_subscription(request.user_id, settings, repo=repo)
        return
    if event == REAUTHORIZATION_REQUIRED:
        try:
            client_for(request.user_id, settings).post(f"/subscriptions/{segment(sub_id)}/reauthorize")
            log.info("user %s: subscription %s reauthorized", request.user_id, sub_id)
        except GraphError as exc:
            if exc.status != 404:
                raise
            log.warning("user %s: subscription %s gone at reauthorization; creating a new one",
                        request.user_id, sub_id)
            create_subscription(request.user_id, settings, repo=repo)
        return
    log.warning("unknown lifecycle event %r for user %s; only resyncing", event, request.user_id)

"""Creating, renewing one, and deleting the events subscription of an account.

One subscription per replicated account, on `me/events` (delegated) or
`users/{graph id}/events` (app-only), with a lifecycle URL so Graph can tell
us about removals and missed notifications. Its id and expiry live on the
user row (`events_subscription_id/_expiration`), which renewal, status and
the worker read.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from shared.graph.paths import segment
from shared.subscriptions import limits

log = logging.getLogger(__name__)

CHANGE_TYPES = "created,updated,deleted"


class SubscriptionError(Exception):
    """A subscription could not be created or renewed; the message says why and what to do."""

    def __init__(self, user_id: str, message: str) -> None:
        super().__init__(f"subscription of user {user_id}: {message}")
        self.user_id = user_id


class SubscriptionQuotaError(SubscriptionError):
    """Graph refused with 403: the mailbox's subscription quota (1000 across all apps) or access."""


@dataclass(frozen=True)
class Subscription:
    user_id: str
    id: str
    expiration: dt.datetime
    resource: str
    created: bool = False  # False: an existing subscription was kept or renewed


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _settings(settings):
    if settings is not None:
        return settings
    from shared.config import get_settings

    return get_settings()


def _repo(settings):
    from shared.storage import open_repository

    return open_repository(settings)


def resource_for(account: Any, user_id: str) -> str:
    """`me/events` for a signed-in user; `users/{id}/events` with the app's own token."""
    if account is not None and account.mode == "app_only":
        return f"users/{segment(account.graph_user_id or user_id)}/events"
    return "me/events"


def client_for(user_id: str, settings=None) -> Any:
    """The user's Graph client (client_for_user picks the app token for app-only accounts).

    It sends `Prefer: IdType="ImmutableId"` when IMMUTABLE_IDS is on, so notifications
    carry the same ids as the delta rounds."""
    from shared.graph import client_for_user

    return client_for_user(user_id, settings)


def record_error(repo: Any, user_id: str, message: str | None, *, quota: bool = False) -> None:
    """Keep the last subscription problem on the account (status shows it); None clears it."""
    account = repo.get_account(user_id)
    extra = dict((account.extra if account else None) or {})
    changes: dict[str, Any] = {}
    if message is None:
        if not extra.get("subscription_error") and not (account and account.quota_error):
            return
        extra.pop("subscription_error", None)
        changes["quota_error"] = None
    else:
        extra["subscription_error"] = message[:500]
        changes["last_error_at"] = _now()
        if quota:
            changes["quota_error"] = message[:500]
    repo.update_account(user_id, extra=extra, **changes)


def _learn_limit(repo: Any, user_id: str, error: Any, asked: int) -> int | None:
    """The smaller lifetime Graph reported in an ExtensionError, stored on the account."""
    if error.status != 400 or error.code != "ExtensionError":
        return None
    limit = limits.parse_extension_limit(error.message)
    if limit is None or limit >= asked + 1:
        return None
    repo.update_account(user_id, subscription_lifetime_minutes=limit)
    log.warning("user %s: Graph allows subscriptions of %d minutes; using that from now on", user_id, limit)
    return limit


def failure(repo: Any, user_id: str, error: Any, action: str) -> SubscriptionError:
    if error.status == 403:
        message = (f"{action} refused (403 {error.code}): {error.message}. The mailbox may have reached "
                   "its subscription quota (1000 across all apps), or the app lacks Calendars.Read")
        record_error(repo, user_id, message, quota=True)
        return SubscriptionQuotaError(user_id, message)
    message = f"{action} failed: {error}"
    record_error(repo, user_id, message)
    return SubscriptionError(user_id, message)


def create_subscription(user_id: str, settings=None, *, repo: Any = None) -> Subscription:
    """POST /subscriptions for the account and store the new id and expiry.

    An ExtensionError naming a smaller lifetime is remembered and the request
    retried once with it. 403 is recorded on the account and raised as
    SubscriptionQuotaError. ReauthRequired passes through (the account is
    already marked)."""
    from shared.graph import GraphError
    from shared.notifications import client_state

    settings = _settings(settings)
    repo = repo or _repo(settings)
    account = repo.get_account(user_id)
    resource = resource_for(account, user_id)
    target = client_state.issue(client_state.SYNC, user_id, settings)
    learned = account.subscription_lifetime_minutes if account else None
    client = client_for(user_id, settings)
    for attempt in range(2):
        minutes = limits.lifetime_minutes(settings, learned)
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": target.notification_url,
            "lifecycleNotificationUrl": target.lifecycle_notification_url,
            "resource": resource,
            "expirationDateTime": limits.iso(limits.expiration_for(minutes)),
            "clientState": target.client_state,
        }
        try:
            created = client.post("/subscriptions", json=body) or {}
            break
        except GraphError as exc:
            smaller = _learn_limit(repo, user_id, exc, minutes) if attempt == 0 else None
            if smaller is None:
                raise failure(repo, user_id, exc, "creating the subscription") from exc
            learned = smaller
    subscription_id = created.get("id")
    expiration = limits.parse_iso(created.get("expirationDateTime"))
    if not subscription_id or expiration is None:
        raise SubscriptionError(user_id, f"Graph answered the creation without id or expiry: {created!r:.200}")
    repo.set_events_subscription(user_id, subscription_id, expiration)
    repo.update_account(user_id, subscription_resource=resource, subscription_client_state_id=target.kid)
    record_error(repo, user_id, None)
    log.info("user %s: subscription %s created, expires %s", user_id, subscription_id, limits.iso(expiration))
    return Subscription(user_id, subscription_id, expiration, resource, created=True)


def renew_one(user_id: str, subscription_id: str, settings=None, *, repo: Any = None) -> Subscription:
    """PATCH one subscription's expiry; 404 (expired or removed) -> a new subscription.

    Used by `ensure_subscription` and the lifecycle handler; the timer renews in
    bulk (renew.py) with the same rules."""
    from shared.graph import GraphError

    settings = _settings(settings)
    repo = repo or _repo(settings)
    account = repo.get_account(user_id)
    learned = account.subscription_lifetime_minutes if account else None
    client = client_for(user_id, settings)
    for attempt in range(2):
        minutes = limits.lifetime_minutes(settings, learned)
        try:
            renewed = client.patch(f"/subscriptions/{segment(subscription_id)}",
                                   json={"expirationDateTime": limits.iso(limits.expiration_for(minutes))}) or {}
            break
        except GraphError as exc:
            if exc.status == 404:
                log.warning("user %s: subscription %s is gone (404); creating a new one", user_id, subscription_id)
                return create_subscription(user_id, settings, repo=repo)
            smaller = _learn_limit(repo, user_id, exc, minutes) if attempt == 0 else None
            if smaller is None:
                raise failure(repo, user_id, exc, "renewing the subscription") from exc
            learned = smaller
    expiration = limits.parse_iso(renewed.get("expirationDateTime")) or limits.expiration_for(minutes)
    repo.set_events_subscription(user_id, subscription_id, expiration)
    record_error(repo, user_id, None)
    return Subscription(user_id, subscription_id, expiration, resource_for(account, user_id))


def ensure_subscription(user_id: str, settings=None, *, now: dt.datetime | None = None) -> Subscription:
    """The user's live subscription: kept when it outlives the renewal horizon, renewed
    when it expires sooner, created when there is none or it has expired.

    Called by the worker after a sync with `subscribe=True`. Does no Graph call
    when the stored subscription is live and not due."""
    settings = _settings(settings)
    repo = _repo(settings)
    now = now or _now()
    user = repo.get_user(user_id)
    account = repo.get_account(user_id)
    sub_id = user.events_subscription_id if user else None
    expiration = user.events_subscription_expiration if user else None
    wanted = resource_for(account, user_id)
    stale_resource = bool(account and account.subscription_resource and account.subscription_resource != wanted)
    if sub_id and expiration and expiration > now and not stale_resource:
        if expiration > limits.renewal_horizon(settings, now):
            return Subscription(user_id, sub_id, expiration, wanted)
        return renew_one(user_id, sub_id, settings, repo=repo)
    if sub_id and stale_resource:
        _delete_quietly(user_id, sub_id, settings)
    return create_subscription(user_id, settings, repo=repo)


def _delete_quietly(user_id: str, subscription_id: str, settings) -> bool:
    from shared.auth.errors import AuthError
    from shared.graph import GraphError

    try:
        client_for(user_id, settings).delete(f"/subscriptions/{segment(subscription_id)}")
        return True
    except GraphError as exc:
        if exc.status == 404:
            return True  # already gone: the goal is reached
        log.warning("user %s: could not delete subscription %s: %s", user_id, subscription_id, exc)
    except AuthError as exc:
        log.warning("user %s: could not delete subscription %s: %s", user_id, subscription_id, exc)
    return False


def delete_subscription(user_id: str, settings=None) -> bool | None:
    """DELETE the user's subscription and forget it (UNLINKED). None when there was none.

    Best effort: an orphan expires within days and its notifications are ignored."""
    settings = _settings(settings)
    repo = _repo(settings)
    user = repo.get_user(user_id)
    sub_id = user.events_subscription_id if user else None
    if not sub_id:
        return None
    deleted = _delete_quietly(user_id, sub_id, settings)
    if user is not None:
        repo.set_events_subscription(user_id, None, None)
    return deleted

"""Creating, renewing one, and deleting the subscriptions of an account: one per calendar.

Graph notifies `me/events` (`users/{id}/events`) for the default calendar only, so every
replicated calendar gets a subscription of its own on `me/calendars/{id}/events`
(`users/{graph id}/calendars/{id}/events` app-only), with a lifecycle URL and a signed
routing id naming the calendar (client_state.py): its notification costs one delta round
of that calendar. The rows live in `microsoft_calendar_subscription_v1`; the user row's
`events_subscription_id/_expiration` mirror the default calendar's subscription.

A mailbox holds at most 1000 subscriptions across all apps: calendars beyond
MAX_CALENDAR_SUBSCRIPTIONS (default calendar first, then by name) are marked `capped`
and left to the renewal run's safety-net sync.

Just over 400 lines: create, renew-one and delete share the request bodies, the lifetime
negotiation with Graph and the row bookkeeping, which keep their rules in one place.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from shared.graph.paths import segment
from shared.subscriptions import limits

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph.client import GraphClient
    from shared.graph.errors import GraphError
    from shared.storage.base import Repository
    from shared.storage.types import AccountChanges, AccountState, CalendarSubscription, SubscriptionChanges

log = logging.getLogger(__name__)

CHANGE_TYPES = "created,updated,deleted"
LIVE, MISSING, CAPPED, FAILED = "live", "missing", "capped", "failed"


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
    calendar_id: str | None = None


@dataclass(frozen=True)
class CalendarRef:
    """The calendar a subscription is for (from the stored list, or Graph's when none is stored)."""

    id: str
    is_default: bool
    name: str = ""


class RowState(TypedDict, total=False):
    """What `store` may record beside the id and expiry (SubscriptionChanges without those two)."""

    resource: str | None
    state: str | None
    is_default: bool | None
    client_state_id: str | None
    last_error: str | None
    sync_started_at: dt.datetime | None
    synced_at: dt.datetime | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from shared.config import get_settings

    return get_settings()


def _repo(settings: Settings) -> Repository:
    from shared.storage import open_repository

    return open_repository(settings)


def resource_for(account: AccountState | None, user_id: str, calendar_id: str) -> str:
    """`me/calendars/{id}/events` for a signed-in user; `users/{uid}/calendars/{id}/events` app-only."""
    if account is not None and account.mode == "app_only":
        mailbox = f"users/{segment(account.graph_user_id or user_id)}"
    else:
        mailbox = "me"
    return f"{mailbox}/calendars/{segment(calendar_id)}/events"


def client_for(user_id: str, settings: Settings | None = None) -> GraphClient:
    """The user's Graph client (client_for_user picks the app token for app-only accounts).

    It sends `Prefer: IdType="ImmutableId"` when IMMUTABLE_IDS is on, so notifications
    carry the same ids as the delta rounds."""
    from shared.graph import client_for_user

    return client_for_user(user_id, settings)


def record_error(repo: Repository, user_id: str, message: str | None, *, quota: bool = False) -> None:
    """Keep the last subscription problem on the account (status shows it); None clears it."""
    account = repo.get_account(user_id)
    extra = dict((account.extra if account else None) or {})
    changes: AccountChanges = {"extra": extra}
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
    repo.update_account(user_id, **changes)


def _learn_limit(repo: Repository, user_id: str, error: GraphError, asked: int) -> int | None:
    """The smaller lifetime Graph reported in an ExtensionError, stored on the account."""
    if error.status != 400 or error.code != "ExtensionError":
        return None
    limit = limits.parse_extension_limit(error.message)
    if limit is None or limit >= asked + 1:
        return None
    repo.update_account(user_id, subscription_lifetime_minutes=limit)
    log.warning("user %s: Graph allows subscriptions of %d minutes; using that from now on", user_id, limit)
    return limit


def failure(repo: Repository, user_id: str, error: GraphError, action: str) -> SubscriptionError:
    if error.status == 403:
        message = (f"{action} refused (403 {error.code}): {error.message}. The mailbox may have reached "
                   "its subscription quota (1000 across all apps), or the app lacks Calendars.Read")
        record_error(repo, user_id, message, quota=True)
        return SubscriptionQuotaError(user_id, message)
    message = f"{action} failed: {error}"
    record_error(repo, user_id, message)
    return SubscriptionError(user_id, message)


def store(repo: Repository, user_id: str, calendar_id: str, subscription_id: str | None, expiration: dt.datetime | None,
          **state: Unpack[RowState]) -> None:
    """Record a calendar's subscription; the default calendar's is mirrored on the user row."""
    changes: SubscriptionChanges = {"subscription_id": subscription_id, "expiration": expiration, **state}
    row = repo.update_calendar_subscription(user_id, calendar_id, **changes)
    if row.is_default:
        repo.set_events_subscription(user_id, subscription_id, expiration)


def create_subscription(user_id: str, settings: Settings | None = None, *, repo: Repository | None = None,
                        calendar: CalendarRef) -> Subscription:
    """POST /subscriptions for one calendar and store the new id and expiry.

    An ExtensionError naming a smaller lifetime is remembered and the request
    retried once with it. 403 is recorded on the account and raised as
    SubscriptionQuotaError. ReauthRequired passes through (the account is
    already marked)."""
    from shared.graph import GraphError
    from shared.notifications import client_state

    settings = _settings(settings)
    repo = repo or _repo(settings)
    account = repo.get_account(user_id)
    resource = resource_for(account, user_id, calendar.id)
    target = client_state.issue(client_state.SYNC, user_id, settings, calendar_id=calendar.id)
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
                what = f"creating the subscription of calendar {calendar.name or calendar.id}"
                error = failure(repo, user_id, exc, what)
                repo.update_calendar_subscription(user_id, calendar.id, state=FAILED, last_error=str(error)[:500],
                                                  is_default=calendar.is_default, resource=resource)
                raise error from exc
            learned = smaller
    subscription_id = created.get("id")
    expiration = limits.parse_iso(created.get("expirationDateTime"))
    if not subscription_id or expiration is None:
        raise SubscriptionError(user_id, f"Graph answered the creation without id or expiry: {created!r:.200}")
    store(repo, user_id, calendar.id, subscription_id, expiration, is_default=calendar.is_default, state=LIVE,
          resource=resource, client_state_id=target.kid, last_error=None)
    if calendar.is_default:
        repo.update_account(user_id, subscription_resource=resource, subscription_client_state_id=target.kid)
    record_error(repo, user_id, None)
    from shared.storage import people

    log.info("%s: subscription %s of calendar %s created, expires %s", people.label_of(repo, user_id),
             subscription_id, calendar.name or calendar.id, limits.iso(expiration))
    return Subscription(user_id, subscription_id, expiration, resource, created=True, calendar_id=calendar.id)


def renew_one(user_id: str, calendar: CalendarRef, subscription_id: str, settings: Settings | None = None, *,
              repo: Repository | None = None) -> Subscription:
    """PATCH one subscription's expiry; 404 (expired or removed) -> a new subscription.

    Used by `ensure_subscriptions` and the renewal run; app-only renewals go in bulk
    (renew.py) with the same rules."""
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
                return create_subscription(user_id, settings, repo=repo, calendar=calendar)
            smaller = _learn_limit(repo, user_id, exc, minutes) if attempt == 0 else None
            if smaller is None:
                raise failure(repo, user_id, exc, "renewing the subscription") from exc
            learned = smaller
    expiration = limits.parse_iso(renewed.get("expirationDateTime")) or limits.expiration_for(minutes)
    store(repo, user_id, calendar.id, subscription_id, expiration, state=LIVE, last_error=None)
    record_error(repo, user_id, None)
    return Subscription(user_id, subscription_id, expiration, resource_for(account, user_id, calendar.id),
                        calendar_id=calendar.id)


def calendars_of(user_id: str, repo: Repository, settings: Settings) -> list[CalendarRef]:
    """The account's calendars, default first: the stored list, else the calendars already subscribed,
    else Graph's list (an account linked but not synced yet)."""
    rows = repo.list_calendars(user_id)
    subscribed = repo.list_calendar_subscriptions(user_id) if not rows else []
    if rows:
        refs = [CalendarRef(r.microsoft_calendar_id, bool(r.is_default_calendar), r.name or "") for r in rows
                if r.microsoft_calendar_id]  # always set: the key of a stored row
    elif subscribed:
        refs = [CalendarRef(r.microsoft_calendar_id, bool(r.is_default)) for r in subscribed
                if r.microsoft_calendar_id]
    else:
        from shared.sync.worker import mailbox_prefix

        prefix = mailbox_prefix(repo.get_account(user_id), user_id)
        listed = client_for(user_id, settings).iter_values(f"{prefix}/calendars",
                                                           params={"$select": "id,name,isDefaultCalendar"})
        refs = [CalendarRef(c["id"], bool(c.get("isDefaultCalendar")), c.get("name") or "")
                for c in listed if isinstance(c, dict) and c.get("id")]
    return sorted(refs, key=lambda c: (not c.is_default, c.name.lower(), c.id))


def ensure_subscriptions(user_id: str, settings: Settings | None = None, *, now: dt.datetime | None = None,
                         repo: Repository | None = None) -> list[Subscription]:
    """Every calendar of the account with a live subscription, and no subscription without a calendar.

    Per calendar: kept when it outlives the renewal horizon, renewed when it expires
    sooner, created when there is none or it has expired. Calendars over the cap are
    marked `capped`; subscriptions of calendars that disappeared are deleted, as is an
    account-wide `me/events` subscription left by an earlier version. Costs no Graph call
    when everything is live and not due. One calendar's failure is recorded on its row and
    the others are still handled; the first failure is raised at the end."""
    settings = _settings(settings)
    repo = repo or _repo(settings)
    now = now or _now()
    horizon = limits.renewal_horizon(settings, now)
    calendars = calendars_of(user_id, repo, settings)
    cap = max(0, int(settings.max_calendar_subscriptions))
    rows = {r.microsoft_calendar_id: r for r in repo.list_calendar_subscriptions(user_id) if r.microsoft_calendar_id}
    _drop_strays(user_id, repo, settings, rows, {c.id for c in calendars})
    results: list[Subscription] = []
    first_error: Exception | None = None
    for index, calendar in enumerate(calendars):
        row = rows.get(calendar.id)
        if index >= cap:
            _cap(user_id, calendar, row, repo, settings)
            continue
        try:
            if row is not None and row.subscription_id and row.expiration and row.expiration > now \
                    and row.state == LIVE:
                if row.expiration > horizon:
                    results.append(Subscription(user_id, row.subscription_id, row.expiration, row.resource or "",
                                                calendar_id=calendar.id))
                    continue
                results.append(renew_one(user_id, calendar, row.subscription_id, settings, repo=repo))
                continue
            if row is not None and row.subscription_id:
                delete_quietly(user_id, row.subscription_id, settings)  # expired or failed: start clean
            results.append(create_subscription(user_id, settings, repo=repo, calendar=calendar))
        except SubscriptionError as exc:
            log.error("user %s: calendar %s has no subscription: %s", user_id, calendar.id, exc)
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results


def _cap(user_id: str, calendar: CalendarRef, row: CalendarSubscription | None, repo: Repository,
         settings: Settings) -> None:
    """Over the per-mailbox cap: no subscription; the safety-net sync keeps the calendar current."""
    if row is not None and row.state == CAPPED:
        return
    if row is not None and row.subscription_id:
        delete_quietly(user_id, row.subscription_id, settings)
    log.warning("user %s: calendar %s is over MAX_CALENDAR_SUBSCRIPTIONS=%s; only the safety-net sync covers it",
                user_id, calendar.name or calendar.id, settings.max_calendar_subscriptions)
    store(repo, user_id, calendar.id, None, None, is_default=calendar.is_default, state=CAPPED,
          resource=None, last_error=None)


def _drop_strays(user_id: str, repo: Repository, settings: Settings, rows: dict[str, CalendarSubscription],
                 calendars: set[str]) -> None:
    """Delete subscriptions of calendars that are gone, and a pre-per-calendar account-wide one."""
    gone = [cal for cal in rows if cal not in calendars]
    for cal in gone:
        subscription_id = rows[cal].subscription_id
        if subscription_id:
            delete_quietly(user_id, subscription_id, settings)
            log.info("user %s: calendar %s is gone; its subscription %s deleted", user_id, cal, subscription_id)
        if rows[cal].is_default:
            repo.set_events_subscription(user_id, None, None)
        rows.pop(cal)
    repo.delete_calendar_subscriptions(user_id, gone)
    user = repo.get_user(user_id)
    legacy = user.events_subscription_id if user else None
    if legacy and legacy not in {r.subscription_id for r in rows.values()}:
        delete_quietly(user_id, legacy, settings)
        repo.set_events_subscription(user_id, None, None)


def ensure_subscription(user_id: str, settings: Settings | None = None, *,
                        now: dt.datetime | None = None) -> Subscription | None:
    """`ensure_subscriptions`, answering the default calendar's subscription (the user row's)."""
    subscriptions = ensure_subscriptions(user_id, settings, now=now)
    return next((s for s in subscriptions if s.id == _default_id(user_id, settings)), None)


def _default_id(user_id: str, settings: Settings | None) -> str | None:
    user = _repo(_settings(settings)).get_user(user_id)
    return user.events_subscription_id if user else None


def delete_quietly(user_id: str, subscription_id: str, settings: Settings | None) -> bool:
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


def delete_subscription(user_id: str, settings: Settings | None = None) -> bool | None:
    """DELETE every subscription of the user and forget them (UNLINKED). None when there was none.

    Best effort: an orphan expires within days and its notifications are ignored."""
    settings = _settings(settings)
    repo = _repo(settings)
    rows = repo.list_calendar_subscriptions(user_id)
    user = repo.get_user(user_id)
    ids = {r.subscription_id for r in rows if r.subscription_id}
    if user is not None and user.events_subscription_id:
        ids.add(user.events_subscription_id)
    if not ids:
        return None
    deleted = all([delete_quietly(user_id, sub_id, settings) for sub_id in sorted(ids)])
    repo.delete_calendar_subscriptions(user_id, [r.microsoft_calendar_id for r in rows if r.microsoft_calendar_id])
    if user is not None:
        repo.set_events_subscription(user_id, None, None)
    return deleted

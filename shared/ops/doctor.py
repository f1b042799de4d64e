"""`python -m shared doctor`: check every dependency and say what to fix, one line each.

Checks run in order and each is independent: a broken database does not hide a
missing client secret. Every FAIL line carries the fix.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.types import AccountState, CalendarRow, CalendarSubscription


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text}\n       fix: {self.fix}"


def _guarded(name: str, fix: str, run: Callable[[], Iterator[Check]]) -> Iterator[Check]:
    try:
        yield from run()
    except Exception as exc:  # one failing dependency is one FAIL line, never a traceback
        yield Check(name, False, f"{type(exc).__name__}: {str(exc)[:300]}", fix)


def check_instance(settings: Settings) -> Iterator[Check]:
    """Which local instance these settings describe; for the `make run` demo, whether it is running."""
    from shared.local_settings import demo_instance

    demo = demo_instance(settings)
    if demo is None:
        return
    where = f"rows in {settings.sqlite_path} (wiped at each start), settings in {demo.settings_file}"
    if demo.running:
        yield Check("instance", True, f"the `make run` demo (pid {demo.pid}, since {demo.details.get('started_at')}) "
                                      f"on {demo.details.get('base_url')}; Graph simulator "
                                      f"{demo.details.get('graph_simulator')}; {where}")
    else:
        yield Check("instance", False, f"the `make run` demo (pid {demo.pid}) is not running: its rows remain, "
                                       f"its Graph simulator is gone; {where}",
                    "start it again with `make run` (or set CLIENT_ID in local.settings.json for real accounts)")


def check_queue_wiring(settings: Settings) -> Iterator[Check]:
    """The queue the app sends sync requests to is the one the queue trigger reads."""
    from shared.queues.wiring import SYNC_TRIGGER_CONNECTION, app_endpoint, connection_endpoint, wiring_problem

    app = app_endpoint(settings)
    problem = wiring_problem(app, connection_endpoint(SYNC_TRIGGER_CONNECTION, settings), SYNC_TRIGGER_CONNECTION)
    if problem:
        yield Check("queue wiring", False, problem, f"make the app and {SYNC_TRIGGER_CONNECTION} name one account")
    else:
        yield Check("queue wiring", True, f"the app and the sync trigger use the {app.describe()}")


def check_configuration(settings: Settings) -> Iterator[Check]:
    from shared.subscriptions import limits

    if not settings.client_id:
        yield Check("configuration", False, "CLIENT_ID is not set",
                    "set CLIENT_ID to the Application (client) ID of the Entra ID app registration")
    else:
        yield Check("configuration", True, f"client {settings.client_id}, authority {settings.authority}, "
                                           f"database {settings.database_backend}")
    if settings.app_only and settings.tenant.lower() in ("common", "organizations", "consumers"):
        yield Check("configuration", False, f"APP_ONLY with TENANT={settings.tenant}",
                    "set TENANT to the directory (tenant) id: client credentials need a tenant")
    try:
        period = limits.schedule_period(settings.renewal_schedule)
    except ValueError as exc:
        yield Check("renewal schedule", False, str(exc), "set RENEWAL_SCHEDULE to six NCRONTAB fields, "
                                                          "e.g. 0 */30 * * * *")
        return
    window = 2 * period + dt.timedelta(minutes=int(settings.renewal_margin_minutes))
    lifetime = dt.timedelta(minutes=int(settings.subscription_lifetime_minutes))
    if window >= lifetime:
        yield Check("renewal schedule", False,
                    f"renewal looks {window} ahead but subscriptions live {lifetime}",
                    "run the renewal timer more often (RENEWAL_SCHEDULE) or lower RENEWAL_MARGIN_MINUTES")
    else:
        yield Check("renewal schedule", True, f"every {period}, renewing {window} ahead of expiry")


def check_secret_store(settings: Settings) -> Iterator[Check]:
    from shared.secrets import CLIENT_SECRET, open_secret_store

    where = settings.key_vault_url or settings.local_secrets_dir
    store = open_secret_store(settings)
    if store.get(CLIENT_SECRET):
        yield Check("secret store", True, f"{where}: client secret present")
    else:
        yield Check("secret store", False, f"{where}: no '{CLIENT_SECRET}' secret",
                    f"python -m shared secrets set {CLIENT_SECRET}  (the app registration's client secret)")


def check_webhooks(settings: Settings) -> Iterator[Check]:
    """Each WEBHOOKS endpoint's signing secret is in the store (without it no delivery can be signed)."""
    from shared.secrets import open_secret_store

    if not settings.webhooks:
        return
    store = open_secret_store(settings)
    for endpoint in settings.webhooks:
        name = f"webhook {endpoint.name}"
        if store.get(endpoint.secret_name):
            yield Check(name, True, f"{endpoint.url}: signing secret '{endpoint.secret_name}' present")
        else:
            yield Check(name, False, f"{endpoint.url}: no '{endpoint.secret_name}' secret; deliveries cannot be "
                                     "signed", f"python -m shared secrets set {endpoint.secret_name}")


def check_database(settings: Settings) -> Iterator[Check]:
    from shared.storage import open_repository

    repo = open_repository(settings)
    counts = repo.counts()
    yield Check("database", True, f"{settings.database_backend}: schema ready, "
                                  + ", ".join(f"{k} {v}" for k, v in counts.items()))


def check_queue(settings: Settings) -> Iterator[Check]:
    from shared.queues import SYNC_QUEUE, open_queue, poison_queue_name

    scratch = open_queue("doctor-scratch", settings)
    token = uuid.uuid4().hex
    scratch.send(token)
    received = []
    for _ in range(3):
        received = scratch.receive(32, visibility_timeout=5)
        if any(m.body == token for m in received):
            break
    for message in received:
        scratch.delete(message)
    if not any(m.body == token for m in received):
        yield Check("queue", False, "a message sent to the scratch queue did not come back",
                    "check QUEUE_CONNECTION_STRING / QUEUE_ACCOUNT_URL and the identity's Queue Data role")
        return
    depth = open_queue(SYNC_QUEUE, settings).depth()
    yield Check("queue", True, f"send/receive roundtrip ok; {SYNC_QUEUE} holds {depth}")
    poison_name = poison_queue_name(SYNC_QUEUE)
    poison = open_queue(poison_name, settings).depth()
    if poison:
        yield Check("poison queue", False, f"{poison} message(s) in {poison_name} failed maxDequeueCount times",
                    "see the cause in the logs / `python -m shared status`, fix it, then "
                    "`python -m shared replay-poison`")
    else:
        yield Check("poison queue", True, f"{poison_name} is empty")


def check_users(settings: Settings, now: dt.datetime | None = None) -> Iterator[Check]:
    """A token for every linked user (MSAL refresh) and a live subscription for each of their calendars,
    confirmed by Graph (a stored row can outlive a subscription deleted from outside)."""
    from shared.auth.errors import AuthError, ReauthRequired
    from shared.auth.tokens import get_token_service
    from shared.local_settings import demo_instance
    from shared.storage import open_repository, people

    repo = open_repository(settings)
    users = {u.microsoft_user_id: u for u in repo.list_users()}
    accounts = repo.list_accounts()
    if not accounts:
        yield Check("users", True, "no accounts linked yet")
        return
    demo = demo_instance(settings)
    if demo is not None and not demo.running:
        yield Check("users", True, f"{len(accounts)} demo account(s); tokens not checked: the demo is not running")
        return
    service = get_token_service()
    now = now or dt.datetime.now(dt.UTC)
    from shared.subscriptions.check import live_subscription_ids

    alive = live_subscription_ids(accounts, settings)
    for account in accounts:
        user_id = account.microsoft_user_id
        if account.status == "unlinked" or not user_id:  # the key of a stored account is always set
            continue
        user = users.get(user_id)
        who = f"user {people.label(user_id, user.data if user else None)}"
        if account.status == "reauth_required":
            yield Check(who, False, f"must sign in again: {account.status_reason}",
                        f"have the user sign in at {settings.app_base_url}/api/oauth/start, or send "
                        "REFRESHED with a new refresh token")
            continue
        try:
            service.access_token(user_id)
        except ReauthRequired as exc:
            yield Check(who, False, f"token refresh rejected: {exc.reason}",
                        f"have the user sign in at {settings.app_base_url}/api/oauth/start")
            continue
        except AuthError as exc:
            yield Check(who, False, f"no token: {exc}",
                        "check the identity platform settings (CLIENT_ID, TENANT, client secret)")
            continue
        rows = repo.list_calendar_subscriptions(user_id)
        if rows:
            yield _calendar_check(who, account, rows, repo.list_calendars(user_id), alive.get(user_id), now)
            continue
        sub_id = user.events_subscription_id if user else None
        expiration = user.events_subscription_expiration if user else None
        if not sub_id:
            yield Check(who, False, "token ok; no subscription",
                        "python -m shared renew  (creates missing subscriptions)")
        elif expiration is None or expiration <= now:
            yield Check(who, False, f"token ok; subscription {sub_id} expired at {expiration}",
                        "python -m shared renew  (recreates it and resyncs the user)")
        elif account.quota_error:
            yield Check(who, False, f"subscription quota: {account.quota_error}",
                        "remove unused subscriptions on the mailbox, then python -m shared renew")
        else:
            yield Check(who, True, f"token ok; subscription live until {expiration:%Y-%m-%d %H:%M}Z")


def _calendar_check(who: str, account: AccountState, rows: list[CalendarSubscription], calendars: list[CalendarRow],
                    alive: set[str] | None, now: dt.datetime) -> Check:
    from shared.ops.status import calendar_states

    entries = calendar_states(rows, calendars, alive, now)
    bad = [e for e in entries if e["state"] in ("missing", "expired")]
    capped = [e["name"] for e in entries if e["state"] == "capped"]
    if bad:
        detail = "; ".join(f"calendar {e['name']}: subscription {e['state']}" for e in bad)
        return Check(who, False, f"token ok; {detail}",
                     "python -m shared renew  (recreates missing subscriptions and resyncs those calendars)")
    if account.quota_error:
        return Check(who, False, f"subscription quota: {account.quota_error}",
                     "remove unused subscriptions on the mailbox, then python -m shared renew")
    live = [e for e in entries if e["state"] == "live"]
    first = min((e["expires_at"] for e in live), default=None)
    checked = "" if alive is not None else " (not confirmed with Graph)"
    over = f"; {len(capped)} over the cap, safety-net sync only: {', '.join(capped)}" if capped else ""
    return Check(who, True, f"token ok; {len(live)} calendar subscription(s) live{checked}, "
                                          f"first expiry {first}{over}")


def in_azure() -> bool:
    """The Functions host sets WEBSITE_SITE_NAME; not a setting of ours, a fact about where we run."""
    return bool(os.environ.get("WEBSITE_SITE_NAME"))


def check_reachability(settings: Settings) -> Iterator[Check]:
    url = settings.app_base_url
    parts = urlsplit(url)
    local = (parts.hostname or "") in ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104
    real_graph = urlsplit(settings.graph_base_url).hostname not in (None, "127.0.0.1", "localhost")
    if parts.scheme != "https" and (in_azure() or real_graph):
        yield Check("reachability", False, f"APP_BASE_URL={url} is not https; Graph only posts to https",
                    "set APP_BASE_URL to the Function App's https URL (e.g. https://myapp.azurewebsites.net)")
    elif local and (in_azure() or real_graph):
        yield Check("reachability", False, f"APP_BASE_URL={url} is not reachable from Microsoft Graph",
                    "set APP_BASE_URL to a public https URL (the Function App, or a tunnel for local runs)")
    else:
        note = " (local: fine with the simulator)" if local else ""
        yield Check("reachability", True, f"notifications go to {url}/api/graph/notifications{note}")


def run_checks(settings: Settings | None = None, *, now: dt.datetime | None = None) -> list[Check]:
    """Every check in order; `now` evaluates subscription expiry at another moment (tests)."""
    from shared.config import ConfigError, get_settings

    try:
        settings = settings or get_settings()
    except ConfigError as exc:
        return [Check("configuration", False, str(exc), "fix the setting named above")]
    checks: list[Check] = []
    steps = (
        ("instance", "check .data/demo/local.settings.json (written by `make run`)", check_instance),
        ("configuration", "fix the settings named above", check_configuration),
        ("secret store", "check KEY_VAULT_URL and the identity's Key Vault Secrets User role", check_secret_store),
        ("webhooks", "check WEBHOOKS and the secret store", check_webhooks),
        ("database", "check DATABASE_BACKEND and its connection setting (PG_DSN, SQLITE_PATH, TABLES_*)",
         check_database),
        ("queue wiring", "check QUEUE_CONNECTION_STRING / QUEUE_ACCOUNT_URL / AzureWebJobsStorage",
         check_queue_wiring),
        ("queue", "check QUEUE_CONNECTION_STRING / QUEUE_ACCOUNT_URL / AzureWebJobsStorage", check_queue),
        ("users", "check the database and the identity platform settings",
         lambda settings: check_users(settings, now)),
        ("reachability", "set APP_BASE_URL", check_reachability),
    )
    for name, fix, step in steps:
        checks.extend(_guarded(name, fix, functools.partial(step, settings)))
    return checks

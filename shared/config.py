"""Every setting the app reads, declared once.

Functions app settings arrive as environment variables. Each `Setting` below is
the single source for its name, type, default and help text: the parser, the
error messages, `local.settings.sample.json`, the README table and the infra
test all read this list. Nothing else in the package calls `os.environ` for
configuration.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.feed.endpoints import Endpoint


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and shows a valid value."""


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_list(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated values; empty items are dropped."""
    return tuple(item for item in raw.replace(",", " ").split() if item)


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _parse_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("expected an http(s) URL")
    return value


def _parse_webhooks(raw: str) -> tuple[Endpoint, ...]:
    from shared.feed.endpoints import parse_endpoints

    return parse_endpoints(raw)


@dataclass(frozen=True)
class Setting:
    """One app setting: its environment name, how to parse it, and what it is for."""

    env: str
    attr: str
    help: str
    example: str
    default: object = None  # what `parse` returns for the example, or None (unset)
    parse: Callable[[str], Any] = str
    secret: bool = False
    deployed: bool = True  # False: only meaningful on a developer machine


SETTINGS: tuple[Setting, ...] = (
    # --- where the app is reachable --------------------------------------------------
    Setting("APP_BASE_URL", "app_base_url",
            "Public https base URL of this Function App; Graph posts notifications here, and "
            "APP_BASE_URL/api/oauth/callback is the redirect URI to register for sign-ins.",
            "https://myapp.azurewebsites.net", "http://127.0.0.1:7071", _parse_url),
    # --- storage of replicated rows ----------------------------------------------------
    Setting("DATABASE_BACKEND", "database_backend",
            "Where rows are replicated: sqlite (embedded default), postgres or tables.",
            "postgres", "sqlite", _parse_choice("sqlite", "postgres", "tables")),
    Setting("SQLITE_PATH", "sqlite_path",
            "SQLite database file when DATABASE_BACKEND=sqlite.",
            ".data/calendar.db", ".data/calendar.db", deployed=False),
    Setting("PG_DSN", "pg_dsn",
            "PostgreSQL connection string when DATABASE_BACKEND=postgres.",
            "host=db.example.com dbname=calendar user=app sslmode=require", None, secret=True),
    Setting("PG_POOL_MAX", "pg_pool_max", "Largest number of pooled PostgreSQL connections.",
            "4", 4, _parse_int),
    Setting("TABLES_CONNECTION_STRING", "tables_connection_string",
            "Storage connection string for Table Storage rows (and blobs for oversized rows).",
            "UseDevelopmentStorage=true", None, secret=True),
    Setting("TABLES_ACCOUNT_URL", "tables_account_url",
            "Table endpoint reached with the managed identity instead of a connection string.",
            "https://mystorage.table.core.windows.net", None, _parse_url),
    Setting("BLOBS_ACCOUNT_URL", "blobs_account_url",
            "Blob endpoint for rows whose JSON is over ~800 KB as UTF-16 (too large for one entity) when tables "
            "use the managed identity.",
            "https://mystorage.blob.core.windows.net", None, _parse_url),
    Setting("TABLE_PREFIX", "table_prefix",
            "Prefix of table names in Table Storage (letters and digits).",
            "calsync", "calsync"),
    # --- queues ------------------------------------------------------------------------
    Setting("QUEUE_CONNECTION_STRING", "queue_connection_string",
            "Storage connection string for the sync and outbound queues. Unset: the queues of "
            "AzureWebJobsStorage (where the queue trigger listens), or the embedded queue under .data/ "
            "when that is unset too.",
            "UseDevelopmentStorage=true", None, secret=True),
    Setting("QUEUE_ACCOUNT_URL", "queue_account_url",
            "Queue endpoint reached with the managed identity instead of a connection string.",
            "https://mystorage.queue.core.windows.net", None, _parse_url),
    Setting("LOCAL_QUEUE_PATH", "local_queue_path",
            "File of the embedded durable queue, used when neither QUEUE_* nor AzureWebJobsStorage is set.",
            ".data/queue.db", ".data/queue.db", deployed=False),
    # --- secrets -----------------------------------------------------------------------
    Setting("KEY_VAULT_URL", "key_vault_url",
            "Azure Key Vault holding the client secret and token-encryption keys; unset "
            "locally means the file store under .data/secrets.",
            "https://myvault.vault.azure.net", None, _parse_url),
    Setting("LOCAL_SECRETS_DIR", "local_secrets_dir",
            "Folder of the local secret store (files mode 0600) when KEY_VAULT_URL is unset.",
            ".data/secrets", ".data/secrets", deployed=False),
    Setting("SECRET_CACHE_SECONDS", "secret_cache_seconds",
            "How long secrets read from the store are cached in memory.",
            "300", 300, _parse_int),
    # --- Microsoft identity platform and Graph -----------------------------------------
    Setting("CLIENT_ID", "client_id",
            "Application (client) ID of the Entra ID app registration.",
            "11111111-2222-3333-4444-555555555555", None),
    Setting("TENANT", "tenant",
            "Tenant in the authority: common, organizations or a tenant id (a tenant id is "
            "required for APP_ONLY).",
            "common", "common"),
    Setting("AUTHORITY_HOST", "authority_host",
            "Identity platform host (national clouds: login.microsoftonline.us, "
            "login.chinacloudapi.cn).",
            "https://login.microsoftonline.com", "https://login.microsoftonline.com", _parse_url),
    Setting("GRAPH_BASE_URL", "graph_base_url",
            "Microsoft Graph root including the version (national clouds: "
            "https://graph.microsoft.us/v1.0, https://microsoftgraph.chinacloudapi.cn/v1.0).",
            "https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/v1.0", _parse_url),
    Setting("GRAPH_SCOPES", "graph_scopes",
            "Delegated scopes asked at sign-in (offline_access, openid and profile are added "
            "by MSAL).",
            "User.Read Calendars.ReadWrite Mail.ReadWrite Mail.Send",
            ("User.Read", "Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send"), _parse_list),
    Setting("AUTHORIZE_URL", "authorize_url",
            "Explicit authorize endpoint (the connector's deprecated connection kind); "
            "normally derived from the authority.",
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize", None, _parse_url),
    Setting("TOKEN_URL", "token_url",
            "Explicit token endpoint, paired with AUTHORIZE_URL.",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token", None, _parse_url),
    Setting("APP_ONLY", "app_only",
            "Use client credentials for the whole tenant instead of per-user sign-in.",
            "false", False, _parse_bool),
    Setting("APP_ONLY_USERS", "app_only_users",
            "With APP_ONLY: user ids or principal names to replicate.",
            "alice@contoso.com,bob@contoso.com", (), _parse_list),
    Setting("APP_ONLY_GROUP", "app_only_group",
            "With APP_ONLY: a group whose members are replicated.",
            "00000000-0000-0000-0000-000000000000", None),
    Setting("GRAPH_TIMEOUT_SECONDS", "graph_timeout_seconds",
            "Timeout of one Graph request.", "30", 30, _parse_int),
    Setting("GRAPH_MAX_RETRIES", "graph_max_retries",
            "Retries of a Graph request on 429/503/504 (Retry-After honoured).", "5", 5, _parse_int),
    Setting("MAX_REQUESTS_PER_MAILBOX", "max_requests_per_mailbox",
            "Graph requests in flight per mailbox (Outlook allows 4).", "4", 4, _parse_int),
    # --- replication ---------------------------------------------------------------------
    Setting("SYNC_WINDOW_DAYS_BACK", "sync_window_days_back",
            "Calendar-view window start, in days before today.", "90", 90, _parse_int),
    Setting("SYNC_WINDOW_DAYS_AHEAD", "sync_window_days_ahead",
            "Calendar-view window end, in days after today.", "365", 365, _parse_int),
    Setting("DELTA_OTHER_CALENDARS", "delta_other_calendars",
            "calendars/{id}/calendarView/delta for non-default calendars: auto (use it; an account "
            "whose Graph answers that the segment is unsupported falls back to full listings with "
            "reconciliation, remembered and shown in status), true (always) or false (always list).",
            "auto", "auto", _parse_choice("auto", "true", "false")),
    Setting("CALENDAR_LIST_MAX_AGE_MINUTES", "calendar_list_max_age_minutes",
            "A calendar's notification also re-reads the calendar list when it is older than this "
            "(new calendars get their subscription, deleted ones lose theirs).",
            "30", 30, _parse_int),
    Setting("MAX_CALENDAR_SUBSCRIPTIONS", "max_calendar_subscriptions",
            "Per mailbox, at most this many calendars get a subscription of their own (Graph allows "
            "1000 per mailbox across all apps); the others are caught by the renewal safety-net sync.",
            "100", 100, _parse_int),
    Setting("GRAPH_PAGE_SIZE", "graph_page_size",
            "Prefer: odata.maxpagesize for delta and list pages.", "100", 100, _parse_int),
    Setting("SYNC_LEASE_SECONDS", "sync_lease_seconds",
            "Lifetime of a user's sync lease; renewed every third of it while the sync runs, so a "
            "killed worker blocks the user's next sync at most this long.",
            "45", 45, _parse_int),
    Setting("THROTTLE_REQUEUE_SECONDS", "throttle_requeue_seconds",
            "A sync throttled with a longer Retry-After is re-queued with that delay instead of "
            "waiting in its worker, so other mailboxes keep flowing.",
            "5", 5, _parse_int),
    Setting("IMMUTABLE_IDS", "immutable_ids",
            "Ask Graph for immutable ids so moved events keep their id.", "true", True, _parse_bool),
    Setting("SUBSCRIPTION_LIFETIME_MINUTES", "subscription_lifetime_minutes",
            "Requested subscription lifetime (Outlook allows 10,080 minutes); lowered automatically "
            "if Graph reports a smaller limit.",
            "10070", 10070, _parse_int),
    Setting("RENEWAL_SCHEDULE", "renewal_schedule",
            "NCRONTAB (with seconds) of the subscription renewal timer.",
            "0 */30 * * * *", "0 */30 * * * *"),
    Setting("WINDOW_SCHEDULE", "window_schedule",
            "NCRONTAB (with seconds) of the daily calendar-window upkeep timer.",
            "0 15 3 * * *", "0 15 3 * * *"),
    # --- change feed and webhooks (docs/CHANGE_FEED.md) ---------------------------------
    Setting("FEED_QUEUES", "feed_queues",
            "Publish the change feed on the outlook-changes and outlook-notifications queues; turn "
            "off when only webhooks consume it.",
            "true", True, _parse_bool),
    Setting("FEED_ROW_SCHEMA", "feed_row_schema",
            "Message schema of row changes on the outlook-changes queue: row-changes.v2 packs a sync's "
            "changes into few messages; row-change.v1 sends one message per changed row (older consumers).",
            "row-changes.v2", "row-changes.v2", _parse_choice("row-changes.v2", "row-change.v1")),
    Setting("WEBHOOKS", "webhooks",
            "JSON array of HTTPS endpoints receiving the feed, signed with the secret webhook-<name>: "
            "[{\"name\", \"url\", \"kinds\" (optional), \"users\" (optional)}].",
            '[{"name":"crm","url":"https://hooks.example.com/calendar","kinds":["row.created"]}]',
            (), _parse_webhooks),
    Setting("WEBHOOK_MAX_ATTEMPTS", "webhook_max_attempts",
            "Delivery attempts per message and endpoint before it goes to webhook-deliveries-poison.",
            "8", 8, _parse_int),
    Setting("WEBHOOK_BACKOFF_SECONDS", "webhook_backoff_seconds",
            "First retry delay of a failed delivery; doubled per attempt (at most an hour), or the "
            "receiver's Retry-After when longer.",
            "30", 30, _parse_int),
    Setting("WEBHOOK_TIMEOUT_SECONDS", "webhook_timeout_seconds",
            "Timeout of one webhook request.", "10", 10, _parse_int),
    # --- operations ----------------------------------------------------------------------
    Setting("LOG_LEVEL", "log_level", "Log level of the app's own loggers.", "INFO", "INFO",
            _parse_choice("debug", "info", "warning", "error")),
    Setting("RENEWAL_MARGIN_MINUTES", "renewal_margin_minutes",
            "Subscriptions expiring before the next two renewal runs plus this margin are renewed.",
            "60", 60, _parse_int),
    Setting("RENEWAL_RESYNC", "renewal_resync",
            "Each renewal run also queues a delta sync of every linked account: a safety net for "
            "notifications Graph lost without a `missed` event.",
            "true", True, _parse_bool),
)

_BY_ATTR = {s.attr: s for s in SETTINGS}

# The Functions host's own storage connection (a connection string, or `__queueServiceUri` /
# `__accountName` sections for the managed identity). Not a setting of the app: the queue trigger
# reads it, so the app sends its sync requests there when no queue of its own is configured.
HOST_STORAGE = "AzureWebJobsStorage"


def host_storage_values(env: Mapping[str, str]) -> dict[str, str]:
    """AzureWebJobsStorage and its `__` sections, as set (empty values count as unset)."""
    return {k: v.strip() for k, v in env.items()
            if (k == HOST_STORAGE or k.startswith(HOST_STORAGE + "__")) and v and v.strip()}


class SettingValues:
    """The parsed type of every setting in SETTINGS, by attribute, so `settings.x` is typed.

    Declarations only: the values live in `Settings.values` (so `with_overrides` and the parser stay
    one loop over SETTINGS); tests/foundation/test_config.py checks these names and types against
    SETTINGS and their defaults. `| None`: unset and without a default.
    """

    app_base_url: str
    database_backend: str  # sqlite | postgres | tables
    sqlite_path: str
    pg_dsn: str | None
    pg_pool_max: int
    tables_connection_string: str | None
    tables_account_url: str | None
    blobs_account_url: str | None
    table_prefix: str
    queue_connection_string: str | None
    queue_account_url: str | None
    local_queue_path: str
    key_vault_url: str | None
    local_secrets_dir: str
    secret_cache_seconds: int
    client_id: str | None
    tenant: str
    authority_host: str
    graph_base_url: str
    graph_scopes: tuple[str, ...]
    authorize_url: str | None
    token_url: str | None
    app_only: bool
    app_only_users: tuple[str, ...]
    app_only_group: str | None
    graph_timeout_seconds: int
    graph_max_retries: int
    max_requests_per_mailbox: int
    sync_window_days_back: int
    sync_window_days_ahead: int
    delta_other_calendars: str  # auto | true | false
    calendar_list_max_age_minutes: int
    max_calendar_subscriptions: int
    graph_page_size: int
    sync_lease_seconds: int
    throttle_requeue_seconds: int
    immutable_ids: bool
    subscription_lifetime_minutes: int
    renewal_schedule: str
    window_schedule: str
    feed_queues: bool
    feed_row_schema: str  # row-changes.v2 | row-change.v1
    webhooks: tuple[Endpoint, ...]
    webhook_max_attempts: int
    webhook_backoff_seconds: int
    webhook_timeout_seconds: int
    log_level: str
    renewal_margin_minutes: int
    renewal_resync: bool


@dataclass(frozen=True)
class Settings(SettingValues):
    """Parsed settings (typed by SettingValues). Values are None when unset and without a default."""

    values: Mapping[str, Any] = field(default_factory=dict)
    host_storage: Mapping[str, str] = field(default_factory=dict)  # see HOST_STORAGE

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def require(self, *attrs: str) -> None:
        """Fail with one clear line for the first required setting that is unset."""
        for attr in attrs:
            if self.values.get(attr) in (None, "", ()):
                setting = _BY_ATTR[attr]
                raise ConfigError(
                    f"{setting.env} is not set: {setting.help} Example: {setting.env}={setting.example}"
                )

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with some values replaced (tests, the CLI's --backend flags)."""
        unknown = set(overrides) - set(_BY_ATTR)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, values={**self.values, **overrides})

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse every setting from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None or raw.strip() == "":
            values[setting.attr] = setting.default
            continue
        try:
            values[setting.attr] = setting.parse(raw)
        except ValueError as exc:
            shown = "<hidden>" if setting.secret else repr(raw)
            raise ConfigError(
                f"{setting.env}={shown} is not valid ({exc}). Example: {setting.env}={setting.example}"
            ) from None
    return Settings(values, host_storage_values(env))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, parsed once."""
    return load_settings()

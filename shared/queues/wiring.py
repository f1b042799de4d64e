"""Which queue service the app sends to, and which one a queue trigger reads: they must be the same.

The sync worker (and the renewal worker) is a queue trigger with
`connection="AzureWebJobsStorage"`, so the Functions host reads it from the host's storage.
The app follows the Functions convention: QUEUE_CONNECTION_STRING or QUEUE_ACCOUNT_URL when set (they must
name the same account as the trigger's connection; doctor and the local host
check it), else AzureWebJobsStorage, and the embedded SQLite queue only when
neither is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.config import HOST_STORAGE, Settings

SYNC_TRIGGER_CONNECTION = HOST_STORAGE  # the `connection` of the calendar-sync queue trigger
RENEWAL_TRIGGER_CONNECTION = HOST_STORAGE  # the `connection` of the subscription-renewal queue trigger

CONNECTION_STRING, ACCOUNT_URL, EMBEDDED = "connection_string", "account_url", "embedded"


@dataclass(frozen=True)
class QueueEndpoint:
    """One queue service: an account reached by connection string or identity, or the embedded file."""

    kind: str  # CONNECTION_STRING, ACCOUNT_URL or EMBEDDED
    address: str  # the queue service URL, or the embedded queue's file
    source: str  # the setting it was read from
    connection_string: str | None = field(default=None, repr=False)  # a secret: never shown

    def same_service(self, other: QueueEndpoint) -> bool:
        """Whether both reach the same queues (an account by key or by identity is one account)."""
        if (self.kind == EMBEDDED) != (other.kind == EMBEDDED):
            return False
        if self.kind == EMBEDDED:
            return Path(self.address).resolve() == Path(other.address).resolve()
        return self.address == other.address

    def describe(self) -> str:
        what = "embedded queue" if self.kind == EMBEDDED else "queue service"
        return f"{what} {self.address} ({self.source})"


def service_url(connection_string: str) -> str:
    """The queue endpoint a connection string names (parsed by the SDK; no request is made)."""
    from azure.storage.queue import QueueServiceClient

    return QueueServiceClient.from_connection_string(connection_string).url.rstrip("/").lower()


def _from_connection_string(connection_string: str, source: str) -> QueueEndpoint:
    try:
        address = service_url(connection_string)
    except ValueError as exc:
        from shared.config import ConfigError

        raise ConfigError(f"{source} is not a storage connection string ({exc}). "
                          f"Example: {source}=UseDevelopmentStorage=true") from None
    return QueueEndpoint(CONNECTION_STRING, address, source, connection_string)


def connection_endpoint(connection: str, settings: Settings) -> QueueEndpoint | None:
    """What the Functions host reads for a trigger's `connection`: the setting itself (a connection
    string), else its `__queueServiceUri` or `__accountName` section; None when none is set."""
    values = settings.host_storage if connection == HOST_STORAGE else {}
    if values.get(connection):
        return _from_connection_string(values[connection], connection)
    if values.get(f"{connection}__queueServiceUri"):
        return QueueEndpoint(ACCOUNT_URL, values[f"{connection}__queueServiceUri"].rstrip("/").lower(),
                             f"{connection}__queueServiceUri")
    if values.get(f"{connection}__accountName"):
        account = values[f"{connection}__accountName"].lower()
        return QueueEndpoint(ACCOUNT_URL, f"https://{account}.queue.core.windows.net", f"{connection}__accountName")
    return None


def app_endpoint(settings: Settings) -> QueueEndpoint:
    """Where the app sends (and the CLI and status look): see the module docstring for the order."""
    if settings.queue_connection_string:
        return _from_connection_string(settings.queue_connection_string, "QUEUE_CONNECTION_STRING")
    if settings.queue_account_url:
        return QueueEndpoint(ACCOUNT_URL, settings.queue_account_url.rstrip("/").lower(), "QUEUE_ACCOUNT_URL")
    host = connection_endpoint(HOST_STORAGE, settings)
    if host is not None:
        return host
    return QueueEndpoint(EMBEDDED, str(settings.local_queue_path), "LOCAL_QUEUE_PATH")


def wiring_problem(app: QueueEndpoint, trigger: QueueEndpoint | None, connection: str) -> str | None:
    """One line saying why the trigger would never see what the app sends; None when they agree."""
    if trigger is None:
        if app.kind == EMBEDDED:
            return None  # nothing set: the local host runs the trigger on the embedded queue
        return (f"the app sends sync requests to the {app.describe()}, but {connection} (the queue trigger's "
                f"connection) is not set, so `func start` would not run the sync worker: set {connection} "
                f"to the same storage account")
    if app.same_service(trigger):
        return None
    return (f"the app sends sync requests to the {app.describe()} but the queue trigger reads the "
            f"{trigger.describe()}: set {app.source} to the same account as {connection}, or unset it")

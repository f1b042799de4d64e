"""Durable queues: the embedded SQLite queue locally, Azure Storage Queues in Azure.

Both give the same at-least-once contract as Azure Storage Queues: a received
message is invisible for a while, comes back if not deleted, and carries its
dequeue count so the host can move it to `<name>-poison` after
`maxDequeueCount` failures (host.json).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.queues.base import Queue, QueueMessage, poison_queue_name

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.queues.wiring import QueueEndpoint

SYNC_QUEUE = "calendar-sync"
OUTBOUND_QUEUE = "outlook-changes"            # row changes (row-changes.v2, or row-change.v1: FEED_ROW_SCHEMA)
NOTIFICATIONS_QUEUE = "outlook-notifications"  # notifications of subscriptions made through the actions
WEBHOOK_QUEUE = "webhook-deliveries"           # one job per (feed message, webhook endpoint)
RENEWAL_QUEUE = "subscription-renewal"         # shards of accounts of a renewal run (shared/subscriptions/shards.py)

__all__ = ["NOTIFICATIONS_QUEUE", "OUTBOUND_QUEUE", "RENEWAL_QUEUE", "SYNC_QUEUE", "WEBHOOK_QUEUE",
           "Queue", "QueueMessage", "open_queue", "poison_queue_name"]


def open_queue(name: str, settings: Settings | None = None, *, endpoint: QueueEndpoint | None = None) -> Queue:
    """The queue called `name` where the app sends (shared/queues/wiring.py), or on `endpoint`
    (the local host's queue triggers); cached per process."""
    from shared import runtime
    from shared.config import get_settings
    from shared.queues.wiring import EMBEDDED, app_endpoint

    if endpoint is None:
        endpoint = app_endpoint(settings or get_settings())
    if endpoint.kind != EMBEDDED:
        from shared.queues.azure import AzureStorageQueue

        account_url = None if endpoint.connection_string else endpoint.address
        return runtime.cached(
            f"queue:azure:{endpoint.address}:{name}",
            lambda: AzureStorageQueue(name, endpoint.connection_string, account_url),
        )
    from shared.queues.local import LocalQueue

    return runtime.cached(f"queue:local:{endpoint.address}:{name}", lambda: LocalQueue(name, endpoint.address))

"""The user's outbox published to the row-change queue (`outlook-changes`) and the webhooks.

The repository records every changed user/calendar/event row in an outbox in the
same transaction as the change (`shared/storage/engine.py`), so a crash or a
queue outage can delay an event but never lose it. `publish_pending` sends
the user's pending entries in sequence order and acknowledges them once the
queue accepted them; the worker calls it at the start of each sync (leftovers
of a failed run go out first) and at the end.

One message per changed row, schema `row-change.v1` (shared/feed/schemas,
docs/CHANGE_FEED.md): `{"schema", "id", "type": "row.<kind>", "table",
"remote_id", "user_id", "version", "sequence", "data"}`. `sequence` is the
outbox's per-user commit order, so a consumer ignores a change older than one
it already applied to the same row. Entries name the change; `data` is the row as
stored when the message is sent (read in one query per table), so a consumer
always gets the latest state; a row deleted since is skipped (its deletion
follows). Delivery is at-least-once (a crash between send and ack sends a
batch again): `id` is a hash of (table, remote id, version, kind) where version
is the row's changeKey/lastModifiedDateTime at the change, so the same change
seen twice (a re-sent batch, a replayed delta page, two workers) gets the same
id and consumers de-duplicate on it. Rows too big for a queue message go
without `data` (`"truncated": true`): the consumer reads the row from the
database.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from shared.feed.contract import ROW_CHANGE, content_id, encode
from shared.queues.base import MAX_MESSAGE_BYTES
from shared.storage.base import change_version as row_version
from shared.storage.types import OutboxEntry

__all__ = ["collapse", "dedup_id", "message_for", "publish_pending", "row_version"]

log = logging.getLogger("shared.sync")
_LIMIT = MAX_MESSAGE_BYTES * 3 // 4 - 1024
BATCH = 500
PROGRESS_LOG_SECONDS = 5.0


def dedup_id(table: str, remote_id: str, version: str, kind: str) -> str:
    return content_id(table, remote_id, version, kind)


def message_for(user_id: str, entry: OutboxEntry, data: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {
        "schema": ROW_CHANGE, "id": dedup_id(entry.table, entry.remote_id, entry.version, entry.kind),
        "type": f"row.{entry.kind}", "table": entry.table, "remote_id": entry.remote_id,
        "user_id": user_id, "version": entry.version, "sequence": entry.seq,
        "data": data if entry.kind != "deleted" else None,
    }
    text = encode(body)
    if len(text.encode("utf-8")) > _LIMIT:
        body["data"], body["truncated"] = None, True
        text = encode(body)
    return text


def collapse(entries: Iterable[OutboxEntry]) -> list[OutboxEntry]:
    """The last change per (table, id): a row created then updated in one batch is one message."""
    last: dict[tuple[str, str], OutboxEntry] = {}
    for entry in entries:
        key = (entry.table, entry.remote_id)
        previous = last.pop(key, None)
        if previous is not None and previous.kind == "created" and entry.kind == "updated":
            entry = dataclasses.replace(entry, kind="created")
        last[key] = entry
    return list(last.values())


def current_data(user_id: str, entries: list[OutboxEntry], repo: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored data of the rows that `created`/`updated` entries name, one query per table."""
    from shared.storage.schema import BY_NAME

    wanted: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind != "deleted":
            wanted.setdefault(entry.table, []).append(entry.remote_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for table, ids in wanted.items():
        key = BY_NAME[table].remote_key
        for row in repo.select(table, user_id, [key, "data"], **{key: ids}):
            found[(table, row[key])] = row["data"]
    return found


def messages(user_id: str, entries: list[OutboxEntry], repo: Any) -> list[str]:
    data = current_data(user_id, entries, repo)
    bodies = []
    for entry in entries:
        row = data.get((entry.table, entry.remote_id))
        if entry.kind != "deleted" and row is None:
            continue  # deleted since: the deletion's own entry tells consumers
        bodies.append(message_for(user_id, entry, row))
    return bodies


def publish_pending(user_id: str, repo: Any, queue: Any = None, settings: Any = None) -> int:
    """Send the user's outbox in order, acknowledging each batch once sent; returns messages sent.

    A queue error propagates with the batch still pending (the sync message is retried).
    """
    sent = 0
    next_log = time.monotonic() + PROGRESS_LOG_SECONDS
    while True:
        if sent and time.monotonic() >= next_log:  # a long outbox is never a silent stall
            log.info("sync %s: %d changed rows published so far", user_id, sent)
            next_log = time.monotonic() + PROGRESS_LOG_SECONDS
        entries = repo.pending_changes(user_id, limit=BATCH)
        if not entries:
            break
        if queue is None:
            from shared.queues import OUTBOUND_QUEUE, open_queue

            queue = open_queue(OUTBOUND_QUEUE, settings)
        from shared.feed.fanout import publish

        sent += publish(queue, messages(user_id, collapse(entries), repo), settings)
        repo.ack_changes(user_id, [e.seq for e in entries])
        if len(entries) < BATCH:
            break
        if sent == len(entries):  # the first full batch: more follow, say so before they take a while
            log.info("sync %s: publishing a long outbox (%d changed rows sent, more pending)", user_id, sent)
    if sent:
        # DEBUG: the worker's "done" line counts them already (one INFO line per sync)
        log.debug("sync %s: %d changed rows published to the outbound queue", user_id, sent)
    return sent

"""The user's outbox published to the row-change queue (`outlook-changes`) and the webhooks.

The repository records every changed user/calendar/event row in an outbox in the
same transaction as the change (`shared/storage/engine.py`), with the row's JSON as
written, so a crash or a queue outage can delay an event but never lose it, and
publishing reads no rows back. `publish_pending` sends the user's pending entries
in sequence order and acknowledges them once the queue accepted them; the worker
calls it at the start of each sync (leftovers of a failed run go out first) and at
the end.

The queue gets `row-changes.v2` by default: `{"schema", "user_id", "changes": [...]}`
where each change is row-change.v1's change fields, packed up to the queue's
message size, so a sync of 500 changed rows costs a handful of queue requests.
`FEED_ROW_SCHEMA=row-change.v1` sends one message per row instead (older
consumers). Webhooks always get one `row-change.v1` per change (an endpoint
filters by kind and user, and signs one change per request).

A change carries `sequence` (the outbox's per-user commit order, so a consumer
ignores a change older than one it already applied to the same row) and `data`,
the row as that change wrote it (entries older than the outbox's `row_data`
column, or rows too large to keep there, are read back in one query per table;
a row deleted since is then skipped, its deletion follows). Delivery is
at-least-once (a crash between send and ack sends a batch again): `id` is a hash
of (table, remote id, version, kind) where version is the row's
changeKey/lastModifiedDateTime at the change, so the same change seen twice (a
re-sent batch, a replayed delta page, two workers) gets the same id and
consumers de-duplicate on it. A change too big for a queue message goes without
`data` (`"truncated": true`): the consumer reads the row from the database.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from shared.config import Settings
from shared.feed.contract import ROW_CHANGE, ROW_CHANGES, content_id, encode
from shared.queues.base import MAX_MESSAGE_BYTES, Queue
from shared.storage.base import Repository
from shared.storage.rows import change_version as row_version
from shared.storage.types import OutboxEntry

__all__ = ["collapse", "dedup_id", "message_for", "pack", "publish_pending", "row_version"]

log = logging.getLogger("shared.sync")
_LIMIT = MAX_MESSAGE_BYTES * 3 // 4 - 1024  # base64 grows a body by 4/3; room for the envelope
BATCH = 500
PROGRESS_LOG_SECONDS = 5.0


def dedup_id(table: str, remote_id: str, version: str, kind: str) -> str:
    return content_id(table, remote_id, version, kind)


def change_text(entry: OutboxEntry, data_text: str | None) -> str:
    """One change's fields as JSON (row-changes.v2's item); `data_text` is spliced in as is (no re-encoding)."""
    head = encode({"id": dedup_id(entry.table, entry.remote_id, entry.version, entry.kind),
                   "type": f"row.{entry.kind}", "table": entry.table, "remote_id": entry.remote_id,
                   "version": entry.version, "sequence": entry.seq})
    if entry.kind == "deleted" or data_text is None:
        return head[:-1] + ',"data":null}'
    text = head[:-1] + ',"data":' + data_text + "}"
    if len(text.encode("utf-8")) > _LIMIT:
        return head[:-1] + ',"data":null,"truncated":true}'
    return text


def single(user_id: str, change: str) -> str:
    """The row-change.v1 message of one change text: the same fields plus `schema` and `user_id`."""
    return '{"schema":"' + ROW_CHANGE + '","user_id":' + json.dumps(user_id) + "," + change[1:]


def message_for(user_id: str, entry: OutboxEntry, data: dict[str, Any] | None) -> str:
    """The row-change.v1 message of one entry with the row's `data`."""
    return single(user_id, change_text(entry, None if data is None else encode(data)))


def pack(user_id: str, changes: Iterable[str]) -> Iterator[str]:
    """row-changes.v2 messages holding `changes` in order, each as full as the queue's size limit allows."""
    head = '{"schema":"' + ROW_CHANGES + '","user_id":' + json.dumps(user_id) + ',"changes":['
    room = _LIMIT - len(head.encode("utf-8")) - 2
    batch: list[str] = []
    used = 0
    for change in changes:
        size = len(change.encode("utf-8")) + 1  # its comma
        if batch and used + size > room:
            yield head + ",".join(batch) + "]}"
            batch, used = [], 0
        batch.append(change)
        used += size
    if batch:
        yield head + ",".join(batch) + "]}"


def collapse(entries: Iterable[OutboxEntry]) -> list[OutboxEntry]:
    """The last change per (table, id): a row created then updated in one batch is one change."""
    last: dict[tuple[str, str], OutboxEntry] = {}
    for entry in entries:
        key = (entry.table, entry.remote_id)
        previous = last.pop(key, None)
        if previous is not None and previous.kind == "created" and entry.kind == "updated":
            entry = dataclasses.replace(entry, kind="created")
        last[key] = entry
    return list(last.values())


def stored_data(user_id: str, entries: list[OutboxEntry], repo: Repository) -> dict[tuple[str, str], str]:
    """The stored data of rows whose entries do not carry it (older entries, huge rows), one query per table."""
    from shared.storage.schema import BY_NAME

    wanted: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind != "deleted" and entry.data is None:
            wanted.setdefault(entry.table, []).append(entry.remote_id)
    found: dict[tuple[str, str], str] = {}
    for table, ids in wanted.items():
        key = BY_NAME[table].remote_key
        for row in repo.select(table, user_id, [key, "data"], **{key: ids}):
            found[(table, row[key])] = encode(row["data"])
    return found


def changes(user_id: str, entries: list[OutboxEntry], repo: Repository) -> list[str]:
    """The change texts of collapsed `entries`, in sequence order."""
    read_back = stored_data(user_id, entries, repo)
    out = []
    for entry in entries:
        data = entry.data if entry.data is not None else read_back.get((entry.table, entry.remote_id))
        if entry.kind != "deleted" and data is None:
            continue  # deleted since: the deletion's own entry tells consumers
        out.append(change_text(entry, data))
    return out


def send(user_id: str, texts: list[str], queue: Queue | None, settings: Settings) -> int:
    """The changes to the queue in the configured schema and, one row-change.v1 each, to the webhooks."""
    from shared.feed.fanout import send_jobs

    if not texts:
        return 0
    if settings.feed_queues:
        if queue is None:
            from shared.queues import OUTBOUND_QUEUE, open_queue

            queue = open_queue(OUTBOUND_QUEUE, settings)
        if settings.feed_row_schema == ROW_CHANGE:
            queue.send_many(single(user_id, t) for t in texts)
        else:
            queue.send_many(pack(user_id, texts))
    if settings.webhooks:
        send_jobs([single(user_id, t) for t in texts], settings)
    return len(texts)


def publish_pending(user_id: str, repo: Repository, queue: Queue | None = None,
                    settings: Settings | None = None) -> int:
    """Send the user's outbox in order, acknowledging each batch once sent; returns changes sent.

    A queue error propagates with the batch still pending (the sync message is retried).
    """
    from shared.config import get_settings

    settings = settings or get_settings()
    sent = 0
    next_log = time.monotonic() + PROGRESS_LOG_SECONDS
    while True:
        if sent and time.monotonic() >= next_log:  # a long outbox is never a silent stall
            log.info("sync %s: %d changed rows published so far", user_id, sent)
            next_log = time.monotonic() + PROGRESS_LOG_SECONDS
        entries = repo.pending_changes(user_id, limit=BATCH)
        if not entries:
            break
        sent += send(user_id, changes(user_id, collapse(entries), repo), queue, settings)
        repo.ack_changes(user_id, [e.seq for e in entries])
        if len(entries) < BATCH:
            break
        if sent == len(entries):  # the first full batch: more follow, say so before they take a while
            log.info("sync %s: publishing a long outbox (%d changed rows sent, more pending)", user_id, sent)
    if sent:
        # DEBUG: the worker's "done" line counts them already (one INFO line per sync)
        log.debug("sync %s: %d changed rows published to the outbound queue", user_id, sent)
    return sent

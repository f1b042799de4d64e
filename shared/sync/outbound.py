"""Changed rows published to the outbound queue (`outlook-changes`) after each sync.

One message per changed row: `{"id", "type": "row.<kind>", "table", "remote_id",
"user_id", "version", "data"}`. `id` is a hash of (table, remote id, version,
kind) where version is the row's changeKey/lastModifiedDateTime: the same change
seen twice (a replayed delta page, a retried message, two workers) gets the
same id, so consumers de-duplicate on it. Rows too big for a queue message go
without `data` (`"truncated": true`): the consumer reads the row from the
database.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from shared.queues.base import MAX_MESSAGE_BYTES

log = logging.getLogger("shared.sync")
_LIMIT = MAX_MESSAGE_BYTES * 3 // 4 - 1024


def row_version(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    return str(data.get("changeKey") or data.get("lastModifiedDateTime") or data.get("@odata.etag") or "")


def dedup_id(table: str, remote_id: str, version: str, kind: str) -> str:
    text = "\x1f".join((table, remote_id, version, kind))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def message_for(user_id: str, change: Any) -> str:
    version = row_version(change.data)
    body: dict[str, Any] = {
        "id": dedup_id(change.table, change.remote_id, version, change.kind),
        "type": f"row.{change.kind}", "table": change.table, "remote_id": change.remote_id,
        "user_id": user_id, "version": version, "data": change.data,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode("utf-8")) > _LIMIT:
        body["data"], body["truncated"] = None, True
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return text


def collapse(changes: Iterable[Any]) -> list[Any]:
    """The last change per (table, id): a row created then updated in one sync is one message."""
    last: dict[tuple[str, str], Any] = {}
    for change in changes:
        key = (change.table, change.remote_id)
        previous = last.pop(key, None)
        if previous is not None and previous.kind == "created" and change.kind == "updated":
            change = type(change)(change.table, change.remote_id, "created", change.data)
        last[key] = change
    return list(last.values())


def publish(user_id: str, changes: Iterable[Any], queue: Any = None) -> int:
    """Send one message per changed row; returns how many were sent."""
    rows = collapse(changes)
    if not rows:
        return 0
    if queue is None:
        from shared.queues import OUTBOUND_QUEUE, open_queue

        queue = open_queue(OUTBOUND_QUEUE)
    sent = queue.send_many(message_for(user_id, c) for c in rows)
    log.info("sync %s: %d changed rows published to the outbound queue", user_id, sent)
    return sent

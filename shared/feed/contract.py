"""The outbound message kinds and their JSON Schemas (one file per kind and version).

Every message on the feed queues and every webhook body carries `schema`
(`<kind>.v<n>`), so a consumer dispatches on it and skips versions it does
not know; a new shape is a new file, never an edit of a published one.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ROW_CHANGE = "row-change.v1"    # one changed row per message (webhooks; the queue when FEED_ROW_SCHEMA says so)
ROW_CHANGES = "row-changes.v2"  # one mailbox's changed rows packed per message (the queue's default)
NOTIFICATION = "notification.v1"
LIFECYCLE = "lifecycle.v1"
SCHEMAS = (ROW_CHANGE, ROW_CHANGES, NOTIFICATION, LIFECYCLE)
ROW_SCHEMAS = (ROW_CHANGES, ROW_CHANGE)  # what FEED_ROW_SCHEMA may choose for the outlook-changes queue

# What a webhook endpoint can subscribe to (the message's `type`).
KINDS = ("row.created", "row.updated", "row.deleted", "notification", "lifecycle")

SCHEMA_DIR = Path(__file__).with_name("schemas")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema document of message kind `name` (e.g. "row-change.v1")."""
    if name not in SCHEMAS:
        raise KeyError(name)
    document: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return document


def content_id(*parts: str) -> str:
    """The de-duplication id of a message: the same content always gives the same id."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def encode(body: dict[str, Any]) -> str:
    """Compact JSON (orjson: this runs for every change published). An unpaired surrogate (hostile
    text kept losslessly) cannot be UTF-8 and orjson refuses it: such a message is written by the json
    module with `\\uXXXX` escapes instead, which keeps it."""
    try:
        return orjson.dumps(body).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=True)

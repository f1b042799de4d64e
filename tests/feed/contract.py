"""Validation of outbound messages against the published JSON Schemas (shared/feed/schemas)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from shared.feed.contract import load_schema


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate(message: str | dict[str, Any]) -> dict[str, Any]:
    """The message parsed, after checking it against the schema it names (raises ValidationError)."""
    body = json.loads(message) if isinstance(message, str) else message
    assert isinstance(body, dict) and "schema" in body, f"message without a schema: {str(message)[:200]}"
    validator(body["schema"]).validate(body)
    return body


def expand(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A consumer reading both row schemas: a row-changes.v2 message as the row-change.v1 message of each
    change (its fields plus `schema` and `user_id`, validated as such); any other message as it is."""
    if body.get("schema") != "row-changes.v2":
        return [body]
    return [validate({"schema": "row-change.v1", "user_id": body["user_id"], **change}) for change in body["changes"]]


def drain(queue_name: str, settings: Any = None, *, packed: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Receive and delete every visible message of a queue (as a consumer would), each one validated;
    row-changes.v2 messages are expanded to one row-change.v1 per change (`packed` collects them as sent)."""
    from shared.queues import open_queue

    queue, out = open_queue(queue_name, settings), []
    while batch := queue.receive(32, visibility_timeout=300):
        for message in batch:
            body = validate(message.body)
            if packed is not None and body["schema"] == "row-changes.v2":
                packed.append(body)
            out += expand(body)
            queue.delete(message)
    return out

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


def drain(queue_name: str, settings: Any = None) -> list[dict[str, Any]]:
    """Receive and delete every visible message of a queue (as a consumer would), each one validated."""
    from shared.queues import open_queue

    queue, out = open_queue(queue_name, settings), []
    while batch := queue.receive(32, visibility_timeout=300):
        for message in batch:
            out.append(validate(message.body))
            queue.delete(message)
    return out

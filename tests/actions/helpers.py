"""Small helpers shared by the action tests."""

from __future__ import annotations

from typing import Any


def ok(answer: tuple[int, Any, Any]) -> Any:
    """The result of a 200 answer from `call`, failing with the error body otherwise."""
    status, body, _ = answer
    assert status == 200, body
    return body["result"]


def hits(sim, key: str) -> int:
    """How many times Graph received `key` ('POST /v1.0/me/calendars')."""
    return sim.counters().get(key, 0)


def mailbox(sim, user: str):
    return sim.store.mailbox(user)

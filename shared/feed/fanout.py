"""Feed messages onto their queue, and one delivery job per matching webhook endpoint.

A job is `{"endpoint", "attempt", "queued_at", "message"}` on the
`webhook-deliveries` queue, where `message` is the feed message exactly as
published. Jobs are sent after the feed queue took the messages and before
the caller acknowledges them (the outbox): a failure re-sends both, which the
message `id` makes harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.queues import WEBHOOK_QUEUE

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.feed.endpoints import Endpoint
    from shared.queues.base import Queue


def job(endpoint: str, message: str, *, attempt: int = 1, queued_at: float | None = None,
        last_error: str | None = None) -> str:
    """One delivery job; `message` is embedded verbatim (no re-encoding of the row data)."""
    head = {"endpoint": endpoint, "attempt": attempt, "queued_at": queued_at if queued_at is not None else time.time()}
    if last_error:
        head["last_error"] = last_error
    return json.dumps(head, separators=(",", ":"))[:-1] + f',"message":{message}}}'


def jobs_for(messages: Iterable[str], endpoints: Iterable[Endpoint], now: float | None = None) -> list[str]:
    """A job per (message, endpoint that wants its kind and user)."""
    endpoints = tuple(endpoints)
    if not endpoints:
        return []
    now = time.time() if now is None else now
    out = []
    for text in messages:
        body = json.loads(text)
        kind, user = body.get("type", ""), body.get("user_id")
        if user is None and "label" in body:  # a forwarded notification: action:<user or app>:<resource>
            user = body["label"].split(":", 2)[1] if body["label"].count(":") >= 2 else None
        out += [job(e.name, text, queued_at=now) for e in endpoints if e.wants(kind, user)]
    return out


def publish(queue: Queue, messages: Iterable[str], settings: Settings | None = None) -> int:
    """Send `messages` to `queue` (unless FEED_QUEUES is off) and their jobs to the webhook queue.

    Returns how many feed messages were published (to the queue, the webhooks or both).
    """
    from shared.config import get_settings

    settings = settings or get_settings()
    messages = list(messages)
    if not messages:
        return 0
    if settings.feed_queues:
        queue.send_many(messages)
    send_jobs(messages, settings)
    return len(messages)


def send_jobs(messages: list[str], settings: Settings) -> None:
    """The delivery jobs of `messages` (one feed message each) for the configured endpoints."""
    jobs = jobs_for(messages, settings.webhooks)
    if jobs:
        from shared.queues import open_queue

        open_queue(WEBHOOK_QUEUE, settings).send_many(jobs)

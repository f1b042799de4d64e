"""Poison messages: kept in `<queue>-poison`, shown by status, replayed on demand.

A message lands there after failing maxDequeueCount times (host.json). They
are never dropped: once the cause is fixed (a bug, an outage, a revoked user
who signed in again) `python -m shared replay-poison` moves them back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings


@dataclass
class ReplayReport:
    queue: str
    moved: int = 0
    found: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)


def describe(body: str) -> dict[str, Any]:
    """A short view of a poison message (a sync request names its user and reason)."""
    try:
        raw = json.loads(body)
    except ValueError:
        return {"body": body[:200]}
    if isinstance(raw, dict):
        keys = ("user_id", "reason", "lifecycle_event", "full", "endpoint", "attempt", "last_error")
        return {k: raw[k] for k in keys if k in raw} or {"body": body[:200]}
    return {"body": body[:200]}


def replay_poison(queue_name: str | None = None, *, dry_run: bool = False, limit: int | None = None,
                  settings: Settings | None = None, rewrite: Callable[[str], str] | None = None) -> ReplayReport:
    """Move messages from `<queue>-poison` back to `<queue>` (sent first, then deleted: at-least-once).

    `rewrite` turns a parked body into the one sent back (webhook jobs start their attempts afresh).
    """
    from shared.queues import SYNC_QUEUE, open_queue, poison_queue_name

    queue_name = queue_name or SYNC_QUEUE
    poison = open_queue(poison_queue_name(queue_name), settings)
    report = ReplayReport(queue_name, dry_run=dry_run)
    if dry_run:
        peeked = poison.peek(32)
        report.found = poison.depth()
        report.preview = [describe(m.body) for m in peeked]
        return report
    target = open_queue(queue_name, settings)
    while limit is None or report.moved < limit:
        batch = poison.receive(16 if limit is None else min(16, limit - report.moved), visibility_timeout=60)
        if not batch:
            break
        for message in batch:
            target.send(rewrite(message.body) if rewrite else message.body)
            poison.delete(message)
            report.moved += 1
            if len(report.preview) < 32:
                report.preview.append(describe(message.body))
    report.found = report.moved
    return report

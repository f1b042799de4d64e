"""Renewal that fans out: the timer plans shards of accounts, queue workers renew them.

One invocation renewing every subscription grows with the tenant (50,000 took 330 s at 100 ms of
Graph latency) until it no longer fits the function timeout. The timer now only numbers a run and
puts shards of SHARD_ACCOUNTS linked account ids (app-only and delegated apart) on the
`subscription-renewal` queue; the
queue-triggered `renewal_worker` renews one shard with the usual machinery (`renew_accounts`:
`$batch` of 20 for app-only, the per-mailbox limit, one failure never stops the others), so the
longest invocation is one shard's and instances share the run. Progress: shared/subscriptions/progress.py.

A shard message holds ids only (a few hundred fit well under the 64 KiB queue limit). The worker
re-reads each account's rows, so a shard that waited in the queue sees the current state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.base import Repository
    from shared.subscriptions.renew import RenewalReport

log = logging.getLogger(__name__)

SHARD_ACCOUNTS = 200  # accounts per shard: ~1,000 subscriptions at 5 calendars each, seconds of work
MAX_SHARD_ACCOUNTS = 1000  # ids of up to 40 characters stay under the 48 KiB a base64 queue message allows
SEND_AT_ONCE = 32  # shards sent per send_many while planning


@dataclass(frozen=True)
class RenewalShard:
    """One queue message: which accounts of which run to renew."""

    run: int
    shard: int
    user_ids: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"run": self.run, "shard": self.shard, "users": list(self.user_ids)},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> RenewalShard:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a renewal shard is a JSON object")
        run, shard, users = raw.get("run"), raw.get("shard"), raw.get("users")
        if not isinstance(run, int) or isinstance(run, bool) or run < 1:
            raise ValueError("run must be a positive integer")
        if not isinstance(shard, int) or isinstance(shard, bool) or shard < 0:
            raise ValueError("shard must be a non-negative integer")
        if (not isinstance(users, list) or not 0 < len(users) <= MAX_SHARD_ACCOUNTS
                or not all(isinstance(u, str) and u for u in users)):
            raise ValueError(f"users must be a list of 1-{MAX_SHARD_ACCOUNTS} non-empty strings")
        return cls(run, shard, tuple(users))


@dataclass(frozen=True)
class RenewalPlan:
    run: int
    shards: int
    accounts: int


def _linked(repo: Repository) -> Iterator[tuple[str, str]]:
    """(id, mode) of the linked accounts, one at a time (the planner keeps only the shards being filled)."""
    for account in repo.list_accounts():
        if account.status == "linked":
            yield str(account.microsoft_user_id), str(account.mode or "delegated")


def _shards(run: int, accounts: Iterable[tuple[str, str]], size: int) -> Iterator[RenewalShard]:
    """Shards of `size` accounts of one mode: app-only accounts share `$batch` requests (a batch cannot mix
    user tokens), so keeping them together leaves at most one part-filled batch per shard."""
    filling: dict[str, list[str]] = {}
    number = 0
    for user_id, mode in accounts:
        batch = filling.setdefault(mode, [])
        batch.append(user_id)
        if len(batch) == size:
            yield RenewalShard(run, number, tuple(batch))
            number, filling[mode] = number + 1, []
    for batch in filling.values():
        if batch:
            yield RenewalShard(run, number, tuple(batch))
            number += 1


def plan_renewal(settings: Settings | None = None, *, shard_accounts: int = SHARD_ACCOUNTS) -> RenewalPlan:
    """The timer's body: number a run and queue its shards; returns what was queued."""
    from shared.config import get_settings
    from shared.queues import RENEWAL_QUEUE, open_queue
    from shared.storage import open_repository
    from shared.subscriptions import progress

    if not 0 < shard_accounts <= MAX_SHARD_ACCOUNTS:
        raise ValueError(f"shard_accounts must be 1-{MAX_SHARD_ACCOUNTS}")
    settings = settings or get_settings()
    repo = open_repository(settings)
    queue = open_queue(RENEWAL_QUEUE, settings)
    run = progress.start_run(repo)
    shards = accounts = 0
    pending: list[str] = []
    for shard in _shards(run, _linked(repo), shard_accounts):
        pending.append(shard.to_json())
        shards, accounts = shards + 1, accounts + len(shard.user_ids)
        if len(pending) == SEND_AT_ONCE:
            queue.send_many(pending)
            pending = []
    if pending:
        queue.send_many(pending)
    progress.planned(repo, run, shards, accounts)
    log.info("renewal run %d: %d account(s) in %d shard(s) queued", run, accounts, shards)
    return RenewalPlan(run, shards, accounts)


def renew_shard(body: str | bytes, settings: Settings | None = None) -> RenewalReport | None:
    """The queue worker's body: renew one shard and add its outcomes to the run's progress.

    A malformed message is logged and dropped (a retry cannot fix it); a failure of the whole shard
    (the database is out) raises, so the host retries it and finally parks it in the poison queue."""
    from shared.config import get_settings
    from shared.storage import open_repository
    from shared.subscriptions import progress
    from shared.subscriptions.renew import OUTCOMES, renew_accounts

    try:
        shard = RenewalShard.from_json(body)
    except (ValueError, TypeError) as exc:
        log.error("dropping malformed renewal shard (%s): %.200r", exc, body)
        return None
    settings = settings or get_settings()
    report = renew_accounts(shard.user_ids, settings=settings)
    progress.shard_done(open_repository(settings), shard.run, {o: getattr(report, o) for o in OUTCOMES})
    log.info("renewal run %d shard %d (%d accounts): %s", shard.run, shard.shard, len(shard.user_ids),
             report.summary())
    return report


__all__ = ["SHARD_ACCOUNTS", "RenewalPlan", "RenewalShard", "plan_renewal", "renew_shard"]

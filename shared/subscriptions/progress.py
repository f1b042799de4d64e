"""The progress of the last renewal run, kept in the repository's atomic counters.

`renewal:run` numbers the runs. A run's figures are counters `renewal:slot<n>:<figure>`, with two slots
used in turn (the last run, and the one before, whose late shards may still finish), so every queue
worker adds its shard's outcomes with one atomic increment each, on every backend, with no schema of
its own and no row per run left behind. Counters only add: the planner resets a slot by adding minus
its value, and `slot<n>:run` says which run the slot holds (a shard of an older run adds nothing).
The planner adds `planned` once, after the last shard is queued; whoever sees `done == planned`
first claims `closed` and stamps `finished_ms`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.subscriptions.renew import OUTCOMES

if TYPE_CHECKING:
    from shared.storage.base import Repository

log = logging.getLogger(__name__)

RUN = "renewal:run"
SLOTS = 2
FIGURES = ("started_ms", "accounts", "planned", "done", *OUTCOMES, "finished_ms")


def _name(run: int, figure: str) -> str:
    return f"renewal:slot{run % SLOTS}:{figure}"


def _set(repo: Repository, name: str, value: int) -> None:
    difference = value - repo.counter(name)
    if difference:
        repo.increment(name, difference)


def _holds(repo: Repository, run: int) -> bool:
    """Whether the run's slot holds that run (not yet an older or a newer one)."""
    return repo.counter(_name(run, "run")) == run


def _now_ms() -> int:
    return int(time.time() * 1000)


def start_run(repo: Repository) -> int:
    """Number a new run and stamp its start."""
    run = repo.increment(RUN)
    for figure in (*FIGURES, "closed"):
        _set(repo, _name(run, figure), 0)
    _set(repo, _name(run, "started_ms"), _now_ms())
    _set(repo, _name(run, "run"), run)
    return run


def planned(repo: Repository, run: int, shards: int, accounts: int) -> None:
    """The planner queued its last shard: from now on `done == planned` means the run is over."""
    if accounts:
        repo.increment(_name(run, "accounts"), accounts)
    if shards:
        repo.increment(_name(run, "planned"), shards)
        _close_if_done(repo, run)
    else:
        _close(repo, run)  # nothing to renew: over as soon as planned


def shard_done(repo: Repository, run: int, outcomes: Mapping[str, int]) -> None:
    """Add one shard's outcomes (after the shard finished, so a retried shard is counted once)."""
    if not _holds(repo, run):
        log.info("renewal run %d: its progress slot holds a newer run now; this shard's figures are not kept", run)
        return
    for outcome, count in outcomes.items():
        if count:
            repo.increment(_name(run, outcome), count)
    repo.increment(_name(run, "done"))
    _close_if_done(repo, run)


def _close_if_done(repo: Repository, run: int) -> None:
    shards = repo.counter(_name(run, "planned"))  # 0 while the planner still queues shards
    if shards and repo.counter(_name(run, "done")) >= shards:
        _close(repo, run)


def _close(repo: Repository, run: int) -> None:
    if repo.increment(_name(run, "closed")) == 1:  # the first to see the run complete stamps it
        repo.increment(_name(run, "finished_ms"), _now_ms())


def last_run(repo: Repository) -> dict[str, Any] | None:
    """The last run's figures for status: None before the first run."""
    run = repo.counter(RUN)
    if run == 0:
        return None
    holds = _holds(repo, run)  # False for a moment while the planner resets the slot
    figures = {figure: repo.counter(_name(run, figure)) if holds else 0 for figure in FIGURES}
    started, finished = figures.pop("started_ms"), figures.pop("finished_ms")
    shards, done = figures.pop("planned"), figures.pop("done")
    planning = shards == 0 and not finished
    state = "finished" if finished else "planning" if planning else "running"
    return {"run": run, "state": state, "shards_planned": shards, "shards_done": done, **figures,
            "started_at": _iso(started), "finished_at": _iso(finished) if finished else None}


def _iso(ms: int) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

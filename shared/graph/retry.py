"""When to retry a Graph request and how long to wait.

Graph asks for patience with 429/503/504 and usually says how long in
`Retry-After` (seconds, sometimes fractional, or an HTTP date). Without it we
back off exponentially with full jitter so many workers do not retry in step.
urllib3's `Retry` honours Retry-After too, but it cannot refresh a token on
401 or release the per-mailbox slot while sleeping, so the client runs its own
small loop and uses only these helpers.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Collection
from dataclasses import dataclass, field

THROTTLE_STATUSES = frozenset({429, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How one request retries. The default is the product's: throttling statuses only.

    - `max_retries`: retries after the first attempt (0 = none).
    - `statuses`: response statuses retried (Retry-After honoured when present).
    - `retry_all_errors`: retry every status >= 400 (except the 401 refresh path).
    - `delay`: fixed wait in seconds when no Retry-After; None = exponential backoff.
    - `backoff_base`/`backoff_cap`: exponential backoff with full jitter.
    - `max_retry_after`: a Retry-After above this is clipped (a bad header must not park a worker).
    - `network_errors`: retry connection errors/timeouts (idempotent methods only unless forced).
    - `defer_above`: a Retry-After above this is not waited for at all: the error is raised at
      once (`ThrottledError.retry_after`) so a queue worker can re-queue instead of sleeping.
    """

    max_retries: int = 5
    statuses: Collection[int] = field(default=THROTTLE_STATUSES)
    retry_all_errors: bool = False
    delay: float | None = None
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    network_errors: bool = True
    network_errors_any_method: bool = False
    defer_above: float | None = None

    def should_retry_status(self, status: int) -> bool:
        return status in self.statuses or (self.retry_all_errors and status >= 400)

    def defers(self, retry_after: float | None) -> bool:
        return self.defer_above is not None and retry_after is not None and retry_after > self.defer_above

    def should_retry_network(self, method: str) -> bool:
        return self.network_errors and (self.network_errors_any_method or method.upper() in IDEMPOTENT_METHODS)

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        if self.delay is not None:
            return max(self.delay, 0.0)
        return backoff(attempt, self.backoff_base, self.backoff_cap)


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1)))."""
    return random.uniform(0.0, min(cap, base * (2 ** max(attempt - 1, 0))))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: '3', '1.5' or an HTTP date. None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)

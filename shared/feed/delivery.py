"""One webhook delivery attempt: sign, POST, then done, retry later, or dead-letter.

The queue trigger calls `deliver(job_text)`. A receiver's failure never raises
(that would make the host retry on its own fixed schedule): a retryable
failure (network, timeout, 408, 425, 429, 5xx) re-queues the job with
attempt + 1, hidden for max(Retry-After, backoff * 2^(attempt-1)) capped at an
hour; after WEBHOOK_MAX_ATTEMPTS, or at once for an answer that retrying cannot
fix (other 4xx, any redirect: redirects are never followed), the job goes to
`webhook-deliveries-poison` with its last error, where
`python -m shared replay-webhooks` finds it. Only the app's own dependencies
(queue, secret store, database) raise, and then the host's retry applies.

Per endpoint, counters in the repository (`webhook:<name>:delivered`,
`:retried`, `:dead_lettered`) feed `status`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.feed import signing

if TYPE_CHECKING:
    import requests

    from shared.config import Settings
    from shared.feed.endpoints import Endpoint
    from shared.storage.base import Repository

log = logging.getLogger("shared.feed")

MAX_DELAY_SECONDS = 3600
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
OUTCOMES = ("delivered", "retried", "dead_lettered")


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: `outcome` is delivered, retried, dead_lettered or dropped."""

    endpoint: str
    outcome: str
    status: int | None = None
    error: str | None = None
    delay_seconds: int = 0


def counter_name(endpoint: str, outcome: str) -> str:
    return f"webhook:{endpoint}:{outcome}"


def retry_after_seconds(value: str | None, now: float) -> int | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() - now))


def backoff_seconds(attempt: int, base: int, retry_after: int | None) -> int:
    """The delay before attempt `attempt + 1`: doubling from `base`, never shorter than Retry-After."""
    delay = min(MAX_DELAY_SECONDS, base * int(2 ** max(0, attempt - 1)))  # int(): typeshed types int ** int as Any
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_DELAY_SECONDS))
    return delay


def _post(endpoint: Endpoint, secret: str, message: dict[str, Any], body: bytes, timeout: int) -> requests.Response:
    import requests

    from shared import runtime

    session = runtime.cached("webhook:session", requests.Session)
    now = int(time.time())
    headers = {
        "Content-Type": "application/json", "User-Agent": "outlook-calendar-sync-webhooks",
        signing.ID_HEADER: str(message.get("id", "")), signing.SCHEMA_HEADER: str(message.get("schema", "")),
        signing.TIMESTAMP_HEADER: str(now), signing.SIGNATURE_HEADER: signing.sign(secret, now, body),
    }
    return session.post(endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)


def _counter(repo: Repository, endpoint: str) -> Callable[[str], None]:
    """Count an outcome; figures are best effort: a failed count must not repeat a delivery."""
    def count(outcome: str) -> None:
        try:
            repo.increment(counter_name(endpoint, outcome))
        except Exception as exc:
            log.warning("webhook %s: could not count a %s delivery (%s)", endpoint, outcome, type(exc).__name__)

    return count


def deliver(job_text: str | bytes, settings: Settings | None = None) -> Attempt:
    """Run one delivery job from the webhook queue."""
    from shared.config import get_settings
    from shared.feed.fanout import job
    from shared.queues import WEBHOOK_QUEUE, open_queue, poison_queue_name
    from shared.secrets import open_secret_store
    from shared.storage import open_repository

    settings = settings or get_settings()
    try:
        doc = json.loads(job_text)
        name, attempt, message = doc["endpoint"], int(doc["attempt"]), doc["message"]
    except (ValueError, TypeError, KeyError) as exc:
        log.error("webhook: dropped a malformed delivery job (%s)", exc)
        return Attempt("", "dropped", error=f"malformed job: {exc}")
    endpoint = next((e for e in settings.webhooks if e.name == name), None)
    if endpoint is None:
        log.warning("webhook %s is no longer configured; its delivery is dropped", name)
        return Attempt(name, "dropped", error="endpoint not configured")
    secret = open_secret_store(settings).get(endpoint.secret_name)
    if not secret:
        raise LookupError(f"secret {endpoint.secret_name} of webhook {name} is not in the secret store")
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    status, retry_after, error = None, None, None
    try:
        answer = _post(endpoint, secret, message, body, settings.webhook_timeout_seconds)
        status = answer.status_code
        retry_after = retry_after_seconds(answer.headers.get("Retry-After"), time.time())
        answer.close()
    except Exception as exc:  # network, TLS, timeout: the receiver's problem, retried
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    count = _counter(open_repository(settings), name)
    if status is not None and 200 <= status < 300:
        count("delivered")
        return Attempt(name, "delivered", status)
    if status is not None:
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    retryable = status is None or status in RETRYABLE
    raw_message = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if retryable and attempt < settings.webhook_max_attempts:
        delay = backoff_seconds(attempt, settings.webhook_backoff_seconds, retry_after)
        open_queue(WEBHOOK_QUEUE, settings).send(
            job(name, raw_message, attempt=attempt + 1, queued_at=doc.get("queued_at"), last_error=error),
            delay_seconds=delay)
        count("retried")
        log.info("webhook %s: attempt %d failed (%s); next in %ds", name, attempt, error, delay)
        return Attempt(name, "retried", status, error, delay)
    open_queue(poison_queue_name(WEBHOOK_QUEUE), settings).send(
        job(name, raw_message, attempt=attempt, queued_at=doc.get("queued_at"), last_error=error))
    count("dead_lettered")
    log.warning("webhook %s: message %s dead-lettered after attempt %d (%s)", name, message.get("id"), attempt,
                error)
    return Attempt(name, "dead_lettered", status, error)


def figures(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Per configured endpoint: its URL and delivery counters (status shows them)."""
    from shared.config import get_settings
    from shared.storage import open_repository

    settings = settings or get_settings()
    if not settings.webhooks:
        return {}
    repo = open_repository(settings)
    return {e.name: {"url": e.url, "kinds": list(e.kinds), "users": list(e.users) or "all",
                     **{o: repo.counter(counter_name(e.name, o)) for o in OUTCOMES}}
            for e in settings.webhooks}

"""Which of the app's subscriptions Graph still holds: status and doctor check against Graph.

A stored row can say "live" for a subscription someone deleted (the actions with
include_sync, another tool, Graph itself). App-only accounts share the app token:
one paged `GET /subscriptions` answers for all of them. A delegated token lists
only the subscriptions its user created, so each delegated account costs one
listing with its own token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.types import AccountState

log = logging.getLogger(__name__)


def _ids(values: Iterable[dict[str, Any]]) -> set[str]:
    return {s["id"] for s in values if isinstance(s, dict) and s.get("id")}


def live_subscription_ids(accounts: list[AccountState], settings: Settings, *,
                          workers: int = 8) -> dict[str, set[str] | None]:
    """user id -> ids of the subscriptions Graph lists for that account; None when it could not be asked."""
    from shared.graph import app_client, client_for_user

    linked = [a for a in accounts if a.status == "linked"]
    # `and a.microsoft_user_id`: the key of a stored account is always set; the test narrows its type.
    result: dict[str, set[str] | None] = {}
    app_only = [a.microsoft_user_id for a in linked if a.mode == "app_only" and a.microsoft_user_id]
    if app_only:
        try:
            held: set[str] | None = _ids(app_client(settings).iter_values("/subscriptions"))
        except Exception as exc:  # status renders without the check; it says so
            log.warning("could not list the app's subscriptions: %s", exc)
            held = None
        result.update(dict.fromkeys(app_only, held))

    def delegated(user_id: str) -> tuple[str, set[str] | None]:
        try:
            return user_id, _ids(client_for_user(user_id, settings).iter_values("/subscriptions"))
        except Exception as exc:
            log.warning("could not list the subscriptions of user %s: %s", user_id, exc)
            return user_id, None

    others = [a.microsoft_user_id for a in linked if a.mode != "app_only" and a.microsoft_user_id]
    if others:
        with ThreadPoolExecutor(max(1, min(workers, len(others))), thread_name_prefix="subcheck") as pool:
            result.update(pool.map(delegated, others))
    return result

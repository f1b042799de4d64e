"""Clients wired to the product's settings and token service.

`client_for_user` is what replication, renewal and actions use for one
mailbox: the token comes from the TokenService (a delegated token of a linked
user, or the app token when APP_ONLY), a 401 drops the cached token once, and
the mailbox key caps concurrency at MAX_REQUESTS_PER_MAILBOX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.graph.client import GraphClient

if TYPE_CHECKING:
    from shared.config import Settings


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from shared.config import get_settings

    return get_settings()


def default_prefer(settings: Settings) -> dict[str, str]:
    """Immutable ids everywhere (an event moved between calendars keeps its id)."""
    return {"IdType": '"ImmutableId"'} if settings.immutable_ids else {}


MUTABLE_IDS = "mutable"  # account extra `event_ids`: this account keeps Outlook's default (mutable) ids


def user_prefer(user_id: str, settings: Settings) -> dict[str, str]:
    """`default_prefer`, unless the account keeps mutable ids (accounts imported from WebhookDB with
    `--keep-mutable-ids`, so their stored ids and their consumers' keys stay valid)."""
    prefer = default_prefer(settings)
    if prefer:
        from shared.storage import open_repository

        account = open_repository(settings).get_account(user_id)
        if account is not None and (account.extra or {}).get("event_ids") == MUTABLE_IDS:
            return {}
    return prefer


def client_for_user(user_id: str, settings: Settings | None = None, *,
                    defer_retry_after: float | None = None) -> GraphClient:
    """A client acting for one mailbox with the user's token (or the app token in APP_ONLY mode);
    `defer_retry_after`: see RetryPolicy.defer_above."""
    from shared.auth.tokens import get_token_service

    s = _settings(settings)
    service = get_token_service()
    return GraphClient(
        s.graph_base_url,
        lambda: service.access_token(user_id),
        on_unauthorized=lambda: service.invalidate(user_id),
        mailbox=user_id,
        timeout=s.graph_timeout_seconds,
        max_retries=s.graph_max_retries,
        max_in_flight=s.max_requests_per_mailbox,
        prefer_headers=user_prefer(user_id, s),
        defer_retry_after=defer_retry_after,
    )


def app_client(settings: Settings | None = None, *, mailbox: str | None = None) -> GraphClient:
    """A client with the app-only token (client credentials); pass `mailbox` for /users/{id} calls."""
    from shared.auth.tokens import get_token_service

    s = _settings(settings)
    service = get_token_service()
    return GraphClient(
        s.graph_base_url,
        service.app_token,
        on_unauthorized=service.invalidate_app,
        mailbox=mailbox,
        timeout=s.graph_timeout_seconds,
        max_retries=s.graph_max_retries,
        max_in_flight=s.max_requests_per_mailbox,
        prefer_headers=default_prefer(s),
    )

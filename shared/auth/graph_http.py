"""The accounts area's Graph access, through the product's GraphClient.

Sign-in reads `/me` with a token that is not stored yet, so it needs a client
around a fixed token; everything else uses the factory's per-user or app
clients (retries, Retry-After, mailbox cap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Unpack

from shared.graph.errors import GraphError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph.client import GraphClient
    from shared.graph.protocol import RequestOptions


def with_token(settings: Settings, token: str) -> GraphClient:
    """A client that sends one fixed bearer token (no refresh on 401)."""
    from shared.graph.client import GraphClient

    return GraphClient(settings.graph_base_url, lambda: token, timeout=settings.graph_timeout_seconds,
                       max_retries=min(2, settings.graph_max_retries))


def get_json(settings: Settings, path: str, token: str, **kwargs: Unpack[RequestOptions]) -> dict[str, Any]:
    return with_token(settings, token).get(path, **kwargs)


__all__ = ["GraphError", "get_json", "with_token"]

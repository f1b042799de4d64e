"""Where the accounts area gets its collaborators; one place for tests to substitute them."""

from __future__ import annotations

from typing import Any


def repository(settings=None) -> Any:
    from shared.storage import open_repository

    return open_repository(settings)


def cipher(settings=None) -> Any:
    from shared.crypto import get_token_cipher

    return get_token_cipher(settings)


def msal_app(settings=None) -> Any:
    from shared.auth.msal_app import get_msal_app

    return get_msal_app(settings)


def enqueue(request: Any, settings=None) -> None:
    from shared.queues.messages import enqueue_sync

    enqueue_sync(request, settings)


def utcnow() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)

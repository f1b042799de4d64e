"""Where the accounts area gets its collaborators; one place for tests to substitute them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.auth.msal_app import MsalApp
    from shared.config import Settings
    from shared.crypto.cipher import TokenCipher
    from shared.queues.messages import SyncRequest
    from shared.storage.base import Repository


def repository(settings: Settings | None = None) -> Repository:
    from shared.storage import open_repository

    return open_repository(settings)


def cipher(settings: Settings | None = None) -> TokenCipher:
    from shared.crypto import get_token_cipher

    return get_token_cipher(settings)


def msal_app(settings: Settings | None = None) -> MsalApp:
    from shared.auth.msal_app import get_msal_app

    return get_msal_app(settings)


def enqueue(request: SyncRequest, settings: Settings | None = None) -> None:
    from shared.queues.messages import enqueue_sync

    enqueue_sync(request, settings)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

"""Process-wide singletons (repository, secret store, token service, queues, HTTP sessions).

A Functions worker reuses its process across invocations, so clients are built
once and kept. Every such object is created through `cached()`, which gives
tests and the CLI one `reset()` that closes and forgets all of them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

_objects: dict[str, Any] = {}
_lock = threading.RLock()


def cached(key: str, factory: Callable[[], T]) -> T:
    """The object stored under `key`, built by `factory` on first use."""
    try:
        return cast(T, _objects[key])  # one key is always built by the same kind of factory
    except KeyError:
        pass
    with _lock:
        if key not in _objects:
            _objects[key] = factory()
        return cast(T, _objects[key])


def reset() -> None:
    """Close (where possible) and forget every cached object."""
    with _lock:
        objects = list(_objects.values())
        _objects.clear()
    for obj in objects:
        close = getattr(obj, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # closing is best effort during a reset
                close()
    from shared.config import get_settings

    get_settings.cache_clear()

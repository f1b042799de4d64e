"""Crash injection for the sync tests: a repository that dies after N stored pages.

The engine carries no test hook; a test passes `repo=crash_after_pages(repo, n)` to the worker,
and the (n+1)th page write raises before it is stored, as a worker killed after n pages would.
"""

from __future__ import annotations

from typing import Any


class SimulatedCrash(RuntimeError):
    """Raised in place of the page write that a killed worker never made."""


class _CrashingRepository:
    """Delegates everything to the real repository; only `save_page` counts and fails."""

    def __init__(self, repo: Any, pages: int) -> None:
        self._repo, self._pages, self._saved = repo, pages, 0

    def save_page(self, *args: Any, **kwargs: Any) -> Any:
        if self._saved >= self._pages:
            raise SimulatedCrash(f"simulated crash after {self._saved} pages")
        result = self._repo.save_page(*args, **kwargs)
        self._saved += 1
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


def crash_after_pages(repo: Any, pages: int) -> Any:
    """`repo`, except that the page write after `pages` stored pages raises SimulatedCrash."""
    return _CrashingRepository(repo, pages)

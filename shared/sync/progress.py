"""Progress of long backfills: a log line every few seconds, a tqdm bar on a terminal.

Logs carry pages, events and events/s so a backfill in the cloud is as visible
as one in a terminal; the bar appears only when stderr is a TTY.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("shared.sync")


class Progress:
    """Counts pages and events of one sync; `log_every` seconds between log lines."""

    def __init__(self, label: str = "", *, log_every: float = 5.0, bar: bool | None = None) -> None:
        self.label = label
        self.pages = 0
        self.events = 0
        self.requests = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self.log_every = log_every
        self._bar: Any = None
        self._want_bar = sys.stderr.isatty() if bar is None else bar

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0

    def page(self, calendar: str, items: int) -> None:
        self.pages += 1
        self.events += items
        if self._want_bar and self._bar is None:
            try:
                from tqdm import tqdm

                self._bar = tqdm(desc=f"sync {self.label}", unit=" events", leave=False, file=sys.stderr)
            except ImportError:  # tqdm is optional
                self._want_bar = False
        if self._bar is not None:
            self._bar.update(items)
        now = time.monotonic()
        if now - self._last_log >= self.log_every:
            self._last_log = now
            log.info("sync %s: %s page %d, %d events so far (%.0f events/s)", self.label, calendar,
                     self.pages, self.events, self.rate)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        return f"{self.pages} pages, {self.events} events in {elapsed:.2f}s ({self.rate:.0f} events/s)"

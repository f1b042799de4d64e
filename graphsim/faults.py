"""Injectable faults (seeded): throttling, outages, latency, lost and repeated notifications."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_503: float = 0.0
    latency_ms: int = 0
    drop_notifications: float = 0.0
    duplicate_notifications: float = 0.0
    retry_after: float = 1.0
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, rate_429: float = 0.0, rate_503: float = 0.0, latency_ms: int = 0,
            drop_notifications: float = 0.0, duplicate_notifications: float = 0.0,
            seed: int | None = None, retry_after: float = 1.0) -> Faults:
        """Replace all fault settings at once (unspecified ones go back to 'off')."""
        with self._lock:
            self.rate_429, self.rate_503, self.latency_ms = rate_429, rate_503, latency_ms
            self.drop_notifications, self.duplicate_notifications = drop_notifications, duplicate_notifications
            self.retry_after, self.seed = retry_after, seed
            self._rng = random.Random(seed)
        return self

    def clear(self) -> Faults:
        return self.set()

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def as_dict(self) -> dict[str, float | int | None]:
        return {"rate_429": self.rate_429, "rate_503": self.rate_503, "latency_ms": self.latency_ms,
                "drop_notifications": self.drop_notifications,
                "duplicate_notifications": self.duplicate_notifications, "seed": self.seed,
                "retry_after": self.retry_after}

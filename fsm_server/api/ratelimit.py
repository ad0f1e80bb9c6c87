"""Token buckets per key (an API token, an address): ``per_minute`` requests a minute on average,
up to ``burst`` at once. In memory, per portal process; the keys are bounded.

>>> t = [0.0]
>>> limit = RateLimiter(per_minute=60, burst=2, clock=lambda: t[0])
>>> limit.take("a"), limit.take("a"), limit.take("a")
(0.0, 0.0, 1.0)
>>> t[0] = 1.0
>>> limit.take("a")
0.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Keys kept at most; beyond that, buckets that have refilled are forgotten (they hold nothing).
MAX_KEYS = 100_000


class RateLimiter:
    """``take(key)`` spends one request of ``key``'s bucket, or says how long until one is there."""

    def __init__(self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (requests left, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        left, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, left + (now - at) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may make a request (0: now), spending nothing."""
        with self._lock:
            level = self._level(key, self.clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: str) -> float:
        """Spend one request of ``key``: 0 when allowed, else the seconds to wait (nothing spent)."""
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            if level < 1.0:
                return (1.0 - level) / self.rate
            self._buckets[key] = (level - 1.0, now)
            if len(self._buckets) > MAX_KEYS:
                self._forget_full(now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]


__all__ = ["MAX_KEYS", "RateLimiter"]

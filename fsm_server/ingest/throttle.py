"""Token buckets per key (an address, a client name), in a table of bounded size.

Each key may spend ``burst`` tokens at once and earns ``rate`` per second back. The table keeps
at most ``max_keys`` keys: the least recently seen is forgotten first, so a flood from ever new
addresses costs a fixed amount of memory (a forgotten key starts again with a full bucket).

>>> t = Throttle(rate=1.0, burst=2, max_keys=100, clock=lambda: 0.0)
>>> [t.take("10.0.0.1") for _ in range(3)]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class Throttle:
    """Per-key token buckets (see the module docstring)."""

    def __init__(
        self, *, rate: float, burst: int, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0.0 if it had one, else the seconds until it will."""
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


__all__ = ["Throttle"]

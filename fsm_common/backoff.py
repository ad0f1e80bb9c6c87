"""Capped exponential backoff with jitter, for every retry and reconnect of both programs."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Backoff:
    """Attempt n waits ``min(cap, initial * 2**(n-1))`` seconds, less a random part of up to
    ``jitter`` of it (half by default), so many clients behind one relay or many mailboxes behind
    one server spread out instead of coming back together.

    >>> b = Backoff(initial=1.0, cap=8.0, rng=lambda: 1.0)
    >>> [b.next() for _ in range(5)], b.delay(1)
    ([1.0, 2.0, 4.0, 8.0, 8.0], 1.0)
    """

    initial: float = 1.0
    cap: float = 60.0
    rng: Callable[[], float] = random.random
    #: The part of each delay that is random: 0.5 waits between half and all of it; 0 waits all of it.
    jitter: float = 0.5
    #: Attempts made since the last ``reset`` (what ``next`` counts from).
    attempts: int = 0

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt in a row (1 for the first)."""
        # past 2**64 any delay is over any cap, and 2.0**1024 would overflow: weeks of a relay
        # down, or a day of a mailbox down, wait the cap
        full = min(self.cap, self.initial * 2.0 ** min(max(0, attempts - 1), 64))
        return full * (1 - self.jitter) + self.rng() * full * self.jitter

    def next(self) -> float:
        """The wait after one more failed attempt."""
        self.attempts += 1
        return self.delay(self.attempts)

    def reset(self) -> None:
        """After a success: the next failure waits the shortest again."""
        self.attempts = 0


__all__ = ["Backoff"]

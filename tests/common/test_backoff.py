"""Reconnect delays: exponential, capped, jittered."""

from __future__ import annotations

import random

from fsm_common.backoff import Backoff


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    b = Backoff(initial=1.0, cap=8.0, rng=random.Random(1).random)
    delays = [b.next() for _ in range(8)]
    for n, d in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jitter: capped delays still differ
    b.reset()
    assert b.next() <= 1.0


def test_backoff_stays_at_the_cap_through_thousands_of_failed_reconnects() -> None:
    # a mailbox unreachable for a day at the 60 s cap: past ~1024 attempts 2**n overflows a float
    b = Backoff(initial=1.0, cap=60.0, rng=random.Random(1).random)
    delays = [b.next() for _ in range(3000)]
    assert all(30.0 <= d <= 60.0 for d in delays[6:])

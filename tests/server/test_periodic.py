"""The loop the services beside the ingest daemon share (scheduled reports, backups, the order
scan): a step at once, then one every period or sooner when it asks, failures logged and tried
again, a stop ending the wait at once."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from fsm_server.errors import DatabaseError
from fsm_server.periodic import repeat

log = logging.getLogger("fsm_server.test")


async def test_steps_run_at_once_and_again_after_a_failure_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    runs: list[float] = []

    async def step() -> None:
        runs.append(time.monotonic())
        if len(runs) == 2:
            raise DatabaseError("the database is away", hint="start it")
        if len(runs) == 4:
            stop.set()

    began = time.monotonic()
    await asyncio.wait_for(repeat(stop, step, every=0.1, log=log, what="test pass"), 5)
    assert len(runs) == 4 and runs[0] - began < 0.05  # the first at once, and on after the failure
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(runs))
    assert "test pass: the database is away" in caplog.text


async def test_a_stop_ends_a_long_wait_at_once_and_a_step_may_ask_for_a_shorter_one() -> None:
    stop = asyncio.Event()
    runs = 0

    async def step() -> float:
        nonlocal runs
        runs += 1
        return 0.0  # "due now": still at least a second between runs, never a busy loop

    task = asyncio.create_task(repeat(stop, step, every=3600.0, log=log, what="test pass"))
    await asyncio.sleep(1.5)
    stop.set()
    began = time.monotonic()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - began < 0.5 and runs == 2

"""What the services beside the ingest daemon share (scheduled reports, backups, the order scan):
a worker thread for their database work, and the loop that runs their work until told to stop.

    worker = DbThread(db, "fsm-orders")
    await repeat(stop, lambda: worker.call(scan), every=600.0, log=log, what="order scan")
    await worker.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fsm_protocol.errors import FsmError

from .db.connect import Database


class DbThread:
    """One thread that runs a service's database work: peewee keeps a connection per thread, so the
    service never shares the daemon's, and ``aclose`` closes its own before the thread ends."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the thread."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def aclose(self) -> None:
        try:
            await self.call(self.db.close)
        finally:
            self._worker.shutdown(wait=True)


async def repeat(
    stop: asyncio.Event,
    step: Callable[[], Awaitable[float | None]],
    *,
    every: float,
    log: logging.Logger,
    what: str,
) -> None:
    """Run ``step`` at once, then every ``every`` seconds until ``stop`` is set (at once then). A step
    may ask for a shorter wait (seconds, at least one); one that fails with an FsmError (the database
    is away) is logged and tried again at the next run."""
    while not stop.is_set():
        wait = every
        try:
            sooner = await step()
            if sooner is not None:
                wait = max(1.0, min(sooner, every))
        except FsmError as exc:
            log.warning("%s: %s", what, exc.message)
        # woken at least every ``every``: a clock change or a suspend is noticed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)


__all__ = ["DbThread", "repeat"]

"""The order scan beside the ingest daemon: every ``[orders] scan_every`` (from the daemon's start)
the proposal rules run over every supply, so a changed lead time or margin, or a device that
stopped reporting, is looked at again without waiting for its next report. Each pass is logged
with its counts.

    scanner = OrderScanner(db, config.orders)        # every=, now=: tests pass a shorter period, a clock
    await scanner.run(stop)                           # or: await scanner.run_once()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from ..config import OrdersSection
from ..db.connect import Database
from ..periodic import DbThread, repeat
from . import proposals

log = logging.getLogger("fsm_server.orders")


class OrderScanner:
    """Runs ``proposals.scan`` every ``settings.scan_every`` (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        settings: OrdersSection,
        *,
        every: float | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.every = settings.scan_every.seconds if every is None else every
        self.now = now or (lambda: datetime.now(UTC))
        self.passes = self.proposed = self.closed = 0
        self._thread = DbThread(db, "fsm-orders")

    def scan(self) -> tuple[int, int]:
        """One pass over every supply (in the worker thread); (orders proposed, orders closed)."""
        proposed, closed = proposals.scan(self.db, self.settings, now=self.now())
        self.passes, self.proposed, self.closed = (
            self.passes + 1,
            self.proposed + proposed,
            self.closed + closed,
        )
        log.info("order scan: %d order(s) proposed, %d closed by a replacement", proposed, closed)
        return proposed, closed

    async def run_once(self) -> tuple[int, int]:
        result: tuple[int, int] = await self._thread.call(self.scan)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """A pass at once, then every ``every`` seconds, until ``stop`` is set."""

        async def check() -> None:
            await self.run_once()

        try:
            await repeat(stop, check, every=self.every, log=log, what="order scan")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._thread.aclose()


__all__ = ["OrderScanner"]

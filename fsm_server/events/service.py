"""The events service beside the ingest daemon: evaluates the rules (``rules``), moves the states
and queues mails (``states``), sends what is due (``mail``) and retries what the relay refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from fsm_common.backoff import Backoff
from fsm_common.errors import TransportError

from ..config import NotifySection, RuleSection, ServerConfig
from ..db.connect import Database, translated
from ..db.models import EVENT_MODELS, Notification
from ..errors import NotifyError
from .mail import smtp_transport
from .rules import ALL_KINDS, ON_INGEST, active, check_rules
from .states import apply

log = logging.getLogger("fsm_server.events")

MAX_RETRY = timedelta(hours=1)
KEEP_SENT = timedelta(days=90)  # sent notifications older than this are deleted


class EventService:
    """Evaluates the rules and sends the mails, beside the ingest daemon.

    >>> # events = EventService(db, config)
    >>> # daemon = IngestDaemon(pipeline, config.mailboxes, on_verdict=events.notice)
    >>> # await asyncio.gather(daemon.run(), events.run(stop))

    ``notice(verdict)`` after each loaded report evaluates the cheap rules at once (an alert
    report's mail leaves within a second); the timer (``[notify] evaluate_seconds``) evaluates
    every rule (silence, forecasts, delays) and retries failed mails.
    """

    def __init__(
        self,
        db: Database,
        config: ServerConfig,
        *,
        now: Callable[[], datetime] | None = None,
        open_transport: Callable[[NotifySection], Any] = smtp_transport,
        extra_rules: Callable[[], list[RuleSection]] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.rules = check_rules(config)
        #: rules kept elsewhere (the portal's), read at every evaluation
        self.extra_rules = extra_rules
        self.notify = config.notify
        self.now = now or (lambda: datetime.now(UTC))
        self.open_transport = open_transport
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsm-events-db")
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: Any = None
        self.sent = 0
        self.failed = 0
        db.peewee.bind(EVENT_MODELS, bind_refs=False, bind_backrefs=False)

    # -- evaluation (database work, in the worker thread) ------------------------------------------

    def evaluate(self, kinds: Iterable[str] = ALL_KINDS) -> list[int]:
        """Evaluate the rules of ``kinds`` now and queue the mails; returns notification ids."""
        kinds = frozenset(kinds)
        now = self.now()
        rules = self.rules + (self.extra_rules() if self.extra_rules is not None else [])
        conditions = active(rules, now=now, settings=self.config.reports, kinds=kinds)
        with translated("cannot record notification state"), self.db.atomic():
            if kinds == ALL_KINDS:  # the outbox keeps sent mails for a while, for questions
                Notification.delete().where(Notification.sent_at < now - KEEP_SENT).execute()
            return apply(conditions, rules, self.notify, now=now, kinds=kinds)

    def due(self) -> list[Notification]:
        with translated("cannot read the notification outbox"):
            return list(
                Notification.select()
                .where(Notification.sent_at.is_null(), Notification.next_try_at <= self.now())
                .order_by(Notification.id)
            )

    def _mark(self, n: Notification, answer: str | None, error: str | None) -> None:
        with translated("cannot update the notification outbox"):
            if error is None:
                Notification.update(sent_at=self.now(), answer=answer or "", attempts=n.attempts + 1).where(
                    Notification.id == n.id
                ).execute()
            else:
                # no jitter: a few notification mails, retried at the documented times
                backoff = Backoff(self.notify.retry_seconds, MAX_RETRY.total_seconds(), jitter=0.0)
                wait = timedelta(seconds=backoff.delay(n.attempts + 1))
                Notification.update(
                    attempts=n.attempts + 1, last_error=error, next_try_at=self.now() + wait
                ).where(Notification.id == n.id).execute()

    # -- async side --------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def drain(self) -> int:
        """Send every due notification; returns how many were sent."""
        sent = 0
        for n in await self._db(self.due):
            if not self.notify.enabled:
                break
            try:
                if self._transport is None:
                    self._transport = self.open_transport(self.notify)
                answer = await self._transport.send(
                    bytes(n.message), mail_from=self.notify.from_addr, rcpt_to=list(n.recipients)
                )
            except TransportError as exc:
                self.failed += 1
                log.warning("notification %d (%s) not sent: %s", n.id, n.subject, exc.message)
                await self._db(self._mark, n, None, f"{exc.message} ({exc.hint})")
                continue
            sent += 1
            log.info("notification %d sent: %s", n.id, n.subject)
            await self._db(self._mark, n, answer, None)
        self.sent += sent
        return sent

    async def run_once(self) -> int:
        """Evaluate every rule and send what is due (cron, tests, ``--once``)."""
        await self._db(self.evaluate, ALL_KINDS)
        return await self.drain()

    def notice(self, verdict: Any = None) -> None:
        """A report was loaded (the ingest daemon's ``on_verdict``): evaluate soon. Thread-safe."""
        if verdict is not None and getattr(verdict, "outcome", "loaded") != "loaded":
            return
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Evaluate on every notice and on the timer, send, until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stop = stop or asyncio.Event()
        next_full = 0.0
        try:
            while not stop.is_set():
                self._wake.clear()  # a notice from here on wakes the next wait at once
                loop_now = self._loop.time()
                kinds = ALL_KINDS if loop_now >= next_full else ON_INGEST
                if kinds is ALL_KINDS:
                    next_full = loop_now + self.notify.evaluate_seconds
                try:
                    await self._db(self.evaluate, kinds)
                    await self.drain()
                except NotifyError:
                    raise
                except Exception:  # a database hiccup must not end notifications for good
                    log.exception("evaluating the notification rules failed; trying again later")
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=max(0.0, next_full - self._loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for t in (waiter, stopper):
                    t.cancel()
        finally:
            await self.aclose()

    def _close_connection(self) -> None:
        # peewee keeps one connection per thread: close the worker's own before the thread goes
        if not self.db.peewee.is_closed():
            self.db.peewee.close()

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        try:
            if transport is not None:
                await transport.aclose()
            await self._db(self._close_connection)
        finally:
            self._worker.shutdown(wait=True)


async def run_beside(daemon: Any, events: EventService, *, once: bool = False, **run_options: Any) -> Any:
    """Run the ingest ``daemon`` with ``events`` beside it; returns the daemon's result.

    Every verdict the daemon reports reaches ``events.notice`` (after the daemon's own
    ``on_verdict``, if it has one); when the daemon returns, the events service stops, after one
    last evaluation of every rule when ``once`` (so ``ingest --once`` also sends its mails)::

        result = await run_beside(IngestDaemon(pipeline, config.mailboxes), EventService(db, config),
                                  once=once, install_signals=True)
    """
    previous = daemon.on_verdict

    def both(verdict: Any) -> None:
        if previous is not None:
            previous(verdict)
        events.notice(verdict)

    daemon.on_verdict = both
    stop = asyncio.Event()
    watcher = None if once else asyncio.create_task(events.run(stop))
    try:
        return await daemon.run(once=once, **run_options)
    finally:
        stop.set()
        if watcher is not None:
            await watcher
        else:
            try:
                await events.run_once()
            finally:
                await events.aclose()


__all__ = ["KEEP_SENT", "MAX_RETRY", "EventService", "run_beside"]

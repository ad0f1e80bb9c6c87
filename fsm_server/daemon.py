"""The IMAP ingest daemon: watch one or more mailboxes, put each mail through the pipeline, then
move it to ``FSM/Processed`` or ``FSM/Quarantine``.

Crash safety is in the order: a mail is moved only AFTER its verdict is committed to the
database. A kill before the commit leaves the mail in the folder and nothing in the database;
a kill between commit and move leaves the mail in the folder and the report in the database,
and the restart re-reads it as a ``duplicate`` (or a repeat quarantine) and moves it then. So a
kill at any moment neither loses a mail nor loads a report twice (UNIQUE(client, seq) makes the
second load impossible, not merely unlikely). A database failure moves nothing.

One loop serves both modes: ``once=True`` drains every mailbox and returns the counts (cron,
tests, the demo); otherwise it waits with IDLE (NOOP poll fallback) and reconnects with capped
exponential backoff and jitter. First SIGTERM/SIGINT: take no new mail, finish the current one
within ``shutdown_timeout``, then cancel; a second SIGINT forces. One summary line on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from fsm_common.backoff import Backoff
from fsm_common.signals import capture_signals

from .config import MailboxSection
from .errors import DatabaseError, MailboxError
from .ingest.pipeline import Pipeline, Tally, Verdict

log = logging.getLogger("fsm_server.daemon")


class MailboxLike(Protocol):
    """What the daemon needs of ``fsm_server.ingest.imap.Mailbox``."""

    async def connect(self) -> None: ...
    async def wait_for_new(self, timeout: float) -> Any: ...
    def fetch_new(self, batch: int = 50) -> Any: ...
    async def move(self, uids: list[int], folder: str) -> Any: ...
    async def aclose(self) -> None: ...


#: Makes the client for one [[mailboxes]] entry; gets the largest mail the pipeline accepts.
MailboxFactory = Callable[[MailboxSection, int], MailboxLike]


def default_mailbox_factory(cfg: MailboxSection, max_mail_bytes: int) -> MailboxLike:
    from .ingest.imap import Mailbox

    # a mail over the limit is fetched only up to limit + 1 bytes: quarantined as too_large
    # without this process ever holding a 50 MB attachment
    return Mailbox.from_config(cfg, max_message_bytes=max_mail_bytes)


@dataclass
class DaemonResult:
    tally: Tally = field(default_factory=Tally)
    moved: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        line = f"ingest stopped after {self.seconds:.1f} s: {self.tally.summary()}; {self.moved} moved"
        if self.reconnects:
            line += f"; {self.reconnects} reconnects"
        return line


def mailbox_name(cfg: MailboxSection) -> str:
    return cfg.name or f"{cfg.user}@{cfg.host}:{cfg.port}"


class IngestDaemon:
    """Drain or watch the configured mailboxes through one pipeline.

    >>> # result = asyncio.run(IngestDaemon(pipeline, config.mailboxes).run(once=True))
    """

    def __init__(
        self,
        pipeline: Pipeline,
        mailboxes: list[MailboxSection],
        *,
        batch: int = 50,
        poll_seconds: float = 300.0,
        shutdown_timeout: float = 10.0,
        mailbox_factory: MailboxFactory = default_mailbox_factory,
        backoff_cap: float = 60.0,
        on_verdict: Callable[[Verdict], None] | None = None,
    ) -> None:
        if not mailboxes:
            from fsm_protocol.errors import ConfigError

            raise ConfigError(
                "no [[mailboxes]] configured",
                hint="add a [[mailboxes]] section (host, user, password) to the server config",
            )
        self.pipeline = pipeline
        self.mailboxes = mailboxes
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.shutdown_timeout = shutdown_timeout
        self.factory = mailbox_factory
        self.backoff_cap = backoff_cap
        self.on_verdict = on_verdict
        self.result = DaemonResult()
        self._stopping = asyncio.Event()
        self._force = False
        # The database connection lives in this one thread; decryption and inserts run there
        # while the event loop keeps talking IMAP.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsm-ingest-db")

    # -- control -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Take no new mail; the current one is finished (called by the first SIGTERM/SIGINT)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self, *, once: bool = False, install_signals: bool = False) -> DaemonResult:
        start = time.monotonic()
        with capture_signals(self._on_signal, enabled=install_signals):
            return await self._run(once=once, start=start)

    async def _run(self, *, once: bool, start: float) -> DaemonResult:
        log.info(
            "ingest started: %s%s",
            ", ".join(mailbox_name(m) for m in self.mailboxes),
            " (once)" if once else "",
        )
        tasks = [
            asyncio.create_task(self._watch(cfg, once=once), name=mailbox_name(cfg)) for cfg in self.mailboxes
        ]
        try:
            stop_wait = asyncio.create_task(self._stopping.wait())
            pending: set[asyncio.Task[Any]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop_wait)
                for t in done:
                    if t is not stop_wait and (exc := t.exception()) is not None:
                        raise exc
                if stop_wait in done:
                    # finish the current message, then cancel whatever is still waiting
                    _, late = await asyncio.wait(pending, timeout=self.shutdown_timeout)
                    for t in late:
                        t.cancel()
                    await asyncio.gather(*late, return_exceptions=True)
                    break
            stop_wait.cancel()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # the worker thread's own database connection (peewee keeps one per thread)
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(self._worker, self.pipeline.db.close)
            self._worker.shutdown(wait=True)
            self.result.seconds = time.monotonic() - start
            log.info("%s", self.result.summary())
        return self.result

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stopping and sig == signal.SIGINT:
            self._force = True
            self._cancel_all()
            return
        log.info("signal %s: finishing the current message, then stopping", sig.name)
        self._stopping.set()

    def _cancel_all(self) -> None:
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task():
                t.cancel()

    # -- one mailbox -----------------------------------------------------------------------------------

    async def _watch(self, cfg: MailboxSection, *, once: bool) -> None:
        name = mailbox_name(cfg)
        backoff = Backoff(cap=self.backoff_cap)
        while not self.stopping:
            mailbox = self.factory(cfg, self.pipeline.limits.max_mail_bytes)
            try:
                await mailbox.connect()
                backoff.reset()
                while not self.stopping:
                    drained = await self._drain(mailbox, cfg)
                    if once and drained:
                        return
                    if drained:
                        await self._interruptible(mailbox.wait_for_new(self.poll_seconds))
            except (MailboxError, DatabaseError) as exc:
                if once or self.stopping:
                    raise
                delay = backoff.next()
                self.result.reconnects += 1
                self.result.errors.append(f"{name}: {exc}")
                log.warning("%s: %s; reconnecting in %.1f s", name, getattr(exc, "message", exc), delay)
                await self._interruptible(asyncio.sleep(delay))
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(mailbox.aclose(), timeout=5)

    async def _interruptible(self, aw: Any) -> None:
        """Await ``aw`` unless a stop comes first."""
        task = asyncio.ensure_future(aw)
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            elif (exc := task.exception()) is not None:
                raise exc

    async def _drain(self, mailbox: MailboxLike, cfg: MailboxSection) -> bool:
        """Process up to one batch; True when the folder had no more than that (drained)."""
        loop = asyncio.get_running_loop()
        name = mailbox_name(cfg)
        to_processed: list[int] = []
        to_quarantine: list[int] = []
        seen = 0
        messages = mailbox.fetch_new(batch=self.batch)
        try:
            async for uid, raw in messages:
                seen += 1
                source = f"imap:{name}/{cfg.folder}:{uid}"
                verdict = await loop.run_in_executor(
                    self._worker, functools.partial(self.pipeline.process, raw, source=source)
                )
                self.result.tally.add(verdict)
                log.debug(
                    "%s: %s %s #%s %s",
                    source,
                    verdict.outcome,
                    verdict.client or "-",
                    verdict.seq,
                    verdict.reason,
                )
                if self.on_verdict is not None:
                    self.on_verdict(verdict)
                (to_quarantine if verdict.outcome == "quarantined" else to_processed).append(uid)
                if self.stopping or seen >= self.batch:
                    break
        finally:
            if hasattr(messages, "aclose"):
                await messages.aclose()
            # Moved only now: every verdict above is committed. A kill before this line leaves
            # the mails in the folder, to be re-read as duplicates.
            if to_processed:
                await mailbox.move(to_processed, cfg.processed_folder)
            if to_quarantine:
                await mailbox.move(to_quarantine, cfg.quarantine_folder)
            self.result.moved += len(to_processed) + len(to_quarantine)
        return seen < self.batch


__all__ = [
    "DaemonResult",
    "IngestDaemon",
    "MailboxFactory",
    "MailboxLike",
    "default_mailbox_factory",
    "mailbox_name",
]

"""Drain the outbox through a transport: in sequence order, at least once, never dropping.

The sender takes the oldest unsent chunk, wraps it in a mail and hands it to the transport;
only after the relay accepted it (or the drop file was renamed into place) is it marked
sent. A kill between "accepted" and "marked" sends that chunk again after restart: a
duplicate under the SAME number, which the server ignores. A failure stops the drain at that
envelope (later numbers wait behind it, so numbering order is kept) and schedules a retry
with capped exponential backoff and jitter, for as long as the relay stays down.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fsm_protocol.errors import ConfigError
from fsm_protocol.mime import build_message
from fsm_protocol.schema import utcnow

from .config import ClientConfig
from .errors import TransportError
from .store import Store
from .transports.base import Transport

log = logging.getLogger("fsm_client.sender")


TransportFactory = Callable[[], AbstractAsyncContextManager[Transport]]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt n waits between half and all of
    ``min(cap, initial * 2**(n-1))`` seconds, so many clients behind one relay spread out."""

    initial: float = 30.0
    cap: float = 1800.0
    rng: Callable[[], float] = random.random

    def delay(self, attempts: int) -> float:
        full = min(self.cap, self.initial * 2 ** max(0, attempts - 1))
        return full / 2 + self.rng() * full / 2


@dataclass
class DrainResult:
    sent_chunks: int = 0
    sent_envelopes: int = 0
    failures: int = 0
    last_error: str | None = None
    seqs: list[int] = field(default_factory=list)


def make_transport_factory(config: ClientConfig) -> TransportFactory:
    """The configured transport ([transport] kind), opened fresh for each drain."""
    kind = config.transport.kind
    if kind == "smtp":
        smtp = config.smtp
        if not smtp.to:
            raise ConfigError("[smtp] to is empty: there is nobody to send reports to",
                              hint='set [smtp] to = ["reports@dealer.example"]')

        def smtp_factory() -> AbstractAsyncContextManager[Transport]:
            from .transports.smtp import SmtpTransport

            return SmtpTransport(
                smtp.host, smtp.port, security=smtp.security, username=smtp.username or None,
                password=smtp.password if smtp.password.reveal() else None,
                ca_file=str(smtp.ca_file) if smtp.ca_file else None, timeout=smtp.timeout,
            )

        return smtp_factory
    directory = config.filedrop.directory
    if directory is None:
        raise ConfigError("[transport] kind = \"filedrop\" needs [filedrop] directory",
                          hint="set [filedrop] directory to the folder the envelopes go to")

    def filedrop_factory() -> AbstractAsyncContextManager[Transport]:
        from .transports.filedrop import FileDropTransport

        return FileDropTransport(Path(directory))

    return filedrop_factory


class Sender:
    """Sends pending outbox chunks in order through transports made by ``open_transport``."""

    def __init__(self, store: Store, open_transport: TransportFactory, *, mail_from: str,
                 rcpt_to: Sequence[str], backoff: Backoff | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.open_transport = open_transport
        self.mail_from = mail_from
        self.rcpt_to = list(rcpt_to) or [mail_from]
        self.backoff = backoff or Backoff()
        self.clock = clock

    @classmethod
    def from_config(cls, store: Store, config: ClientConfig, *,
                    open_transport: TransportFactory | None = None,
                    clock: Callable[[], datetime] = utcnow) -> Sender:
        return cls(store, open_transport or make_transport_factory(config),
                   mail_from=config.smtp.from_addr, rcpt_to=config.smtp.to,
                   backoff=Backoff(config.outbox.retry_initial, config.outbox.retry_max), clock=clock)

    def wait_seconds(self) -> float:
        """Seconds until the outbox may be tried again (0: now, or nothing is waiting).

        A retry time further off than the longest backoff was set before the wall clock
        stepped back: it is due now, not after the step (an alert must not wait an hour)."""
        at = self.store.next_attempt_at()
        if at is None:
            return 0.0
        wait = max(0.0, (at - self.clock()).total_seconds())
        return 0.0 if wait > self.backoff.cap else wait

    async def drain(self, *, stop: Callable[[], bool] = lambda: False, force: bool = False) -> DrainResult:
        """Send every pending chunk, oldest first, until the outbox is empty, a send fails, or
        ``stop()`` says so. A failure is recorded with its retry time; it never raises for one.
        Before that retry time nothing is tried, unless ``force`` (an operator's `send`)."""
        result = DrainResult()
        if not self.store.pending_chunks(limit=1) or (self.wait_seconds() > 0 and not force):
            return result
        try:
            async with self.open_transport() as transport:
                while not stop():
                    # one chunk at a time: a chunk can be megabytes, and the order is the store's
                    pending = self.store.pending_chunks(limit=1)
                    if not pending:
                        break
                    chunk = pending[0]
                    message = build_message(chunk.data, from_addr=self.mail_from,
                                            to_addr=", ".join(self.rcpt_to), now=self.clock())
                    answer = await transport.send(message, mail_from=self.mail_from, rcpt_to=self.rcpt_to)
                    result.sent_chunks += 1
                    if self.store.mark_chunk_sent(chunk.seq, chunk.chunk_index, at=self.clock(),
                                                  answer=str(answer)):
                        result.sent_envelopes += 1
                        result.seqs.append(chunk.seq)
        except TransportError as exc:  # the transport translated the library's error: retry later
            self._failed(result, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        return result

    def _failed(self, result: DrainResult, error: str) -> None:
        pending = self.store.pending_chunks(limit=1)
        if not pending:
            return
        seq = pending[0].seq
        attempts = self.store.attempts(seq) + 1
        delay = self.backoff.delay(attempts)
        self.store.record_failure(seq, error=error, next_attempt_at=self.clock() + timedelta(seconds=delay))
        result.failures += 1
        result.last_error = error
        log.warning("sending report %d failed (attempt %d), retrying in %.0f s: %s",
                    seq, attempts, delay, error)


__all__ = ["Backoff", "DrainResult", "Sender", "TransportFactory", "make_transport_factory"]

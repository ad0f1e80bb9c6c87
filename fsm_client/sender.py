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
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fsm_common.backoff import Backoff
from fsm_common.transport import EnvelopeTransport, Transport
from fsm_protocol.errors import ConfigError
from fsm_protocol.mime import build_message
from fsm_protocol.schema import utcnow

from .config import ClientConfig
from .errors import TransportError
from .store import Store

log = logging.getLogger("fsm_client.sender")


TransportFactory = Callable[[], AbstractAsyncContextManager[Transport]]
NamedFactory = tuple[str, TransportFactory]


@dataclass
class DrainResult:
    sent_chunks: int = 0
    sent_envelopes: int = 0
    failures: int = 0
    last_error: str | None = None
    seqs: list[int] = field(default_factory=list)


def make_transport_factory(config: ClientConfig, kind: str | None = None) -> TransportFactory:
    """The transport ``kind`` (default: the first of [transport] kind), opened fresh for each drain.

    Settings it needs are checked here, at start-up, not at the first send."""
    kind = kind or config.transport.kinds[0]
    if kind == "smtp":
        smtp = config.smtp
        if not smtp.to:
            raise ConfigError(
                "[smtp] to is empty: there is nobody to send reports to",
                hint='set [smtp] to = ["reports@dealer.example"]',
            )

        def smtp_factory() -> AbstractAsyncContextManager[Transport]:
            from fsm_common.smtp import SmtpTransport

            return SmtpTransport(
                smtp.host,
                smtp.port,
                security=smtp.security,
                username=smtp.username or None,
                password=smtp.password if smtp.password.reveal() else None,
                ca_file=str(smtp.ca_file) if smtp.ca_file else None,
                timeout=smtp.timeout,
            )

        return smtp_factory
    if kind == "https":
        from .transports.https import HttpsTransport, normalise_pin, proxy_for, tls_context

        section = config.transport
        tls_context(section.ca_file)  # a missing or broken CA file is a start-up error
        pins = [normalise_pin(p) for p in section.pin_sha256]
        proxy = proxy_for(section.url, section.proxy.reveal() or None)

        def https_factory() -> AbstractAsyncContextManager[Transport]:
            return HttpsTransport(
                section.url, ca_file=section.ca_file, pins=pins, proxy=proxy, timeout=section.timeout
            )

        return https_factory
    directory = config.filedrop.directory
    if directory is None:
        raise ConfigError(
            '[transport] kind = "filedrop" needs [filedrop] directory',
            hint="set [filedrop] directory to the folder the envelopes go to",
        )

    def filedrop_factory() -> AbstractAsyncContextManager[Transport]:
        from .transports.filedrop import FileDropTransport

        return FileDropTransport(Path(directory))

    return filedrop_factory


def make_transports(config: ClientConfig) -> list[NamedFactory]:
    """Every transport of [transport] kind, by name, in the order they are tried."""
    return [(kind, make_transport_factory(config, kind)) for kind in config.transport.kinds]


class Sender:
    """Sends pending outbox chunks in order through transports made by ``open_transport``.

    ``open_transport`` is one factory, or several as (name, factory) in the order they are tried:
    each chunk goes by the first that accepts it, and one that failed is not tried again in the
    same drain (the next drain tries it first again). The answer recorded names the transport.
    """

    def __init__(
        self,
        store: Store,
        open_transport: TransportFactory | Sequence[NamedFactory],
        *,
        mail_from: str,
        rcpt_to: Sequence[str],
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.transports: list[NamedFactory] = (
            [("transport", open_transport)] if callable(open_transport) else list(open_transport)
        )
        if not self.transports:
            raise ConfigError("no transport to send reports by", hint="set [transport] kind")
        self.mail_from = mail_from
        self.rcpt_to = list(rcpt_to) or [mail_from]
        self.backoff = backoff or Backoff(initial=30.0, cap=1800.0)
        self.clock = clock

    @classmethod
    def from_config(
        cls,
        store: Store,
        config: ClientConfig,
        *,
        open_transport: TransportFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Sender:
        return cls(
            store,
            open_transport or make_transports(config),
            mail_from=config.smtp.from_addr,
            rcpt_to=config.smtp.to,
            backoff=Backoff(config.outbox.retry_initial, config.outbox.retry_max),
            clock=clock,
        )

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
        async with AsyncExitStack() as stack:
            opened: dict[str, Transport] = {}
            down: dict[str, str] = {}  # transports that failed in this drain -> their error
            while not stop():
                # one chunk at a time: a chunk can be megabytes, and the order is the store's
                pending = self.store.pending_chunks(limit=1)
                if not pending:
                    break
                chunk = pending[0]
                answer: str | None = None
                for name, factory in self.transports:
                    if name in down:
                        continue
                    try:
                        if name not in opened:
                            opened[name] = await stack.enter_async_context(factory())
                        answer = await self._send_one(opened[name], chunk.data)
                    except TransportError as exc:  # the transport translated the library's error
                        down[name] = exc.message + (f" ({exc.hint})" if exc.hint else "")
                        if len(self.transports) > 1:
                            log.warning("report %d did not go by %s: %s", chunk.seq, name, down[name])
                        continue
                    answer = f"{name}: {answer}" if len(self.transports) > 1 else answer
                    break
                if answer is None:  # every transport failed: retry later
                    errors = [f"{n}: {e}" for n, e in down.items()] if len(down) > 1 else list(down.values())
                    self._failed(result, "; ".join(errors))
                    break
                result.sent_chunks += 1
                if self.store.mark_chunk_sent(chunk.seq, chunk.chunk_index, at=self.clock(), answer=answer):
                    result.sent_envelopes += 1
                    result.seqs.append(chunk.seq)
        return result

    async def _send_one(self, transport: Transport, data: bytes) -> str:
        if isinstance(transport, EnvelopeTransport):
            return await transport.send_envelope(data)
        message = build_message(
            data, from_addr=self.mail_from, to_addr=", ".join(self.rcpt_to), now=self.clock()
        )
        return str(await transport.send(message, mail_from=self.mail_from, rcpt_to=self.rcpt_to))

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
        log.warning(
            "sending report %d failed (attempt %d), retrying in %.0f s: %s", seq, attempts, delay, error
        )


__all__ = [
    "DrainResult",
    "NamedFactory",
    "Sender",
    "TransportFactory",
    "make_transport_factory",
    "make_transports",
]

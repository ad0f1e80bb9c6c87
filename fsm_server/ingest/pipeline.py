"""The one place every message goes through, whatever its source (IMAP, archive, file drop, retry).

Steps, in order, each refusing before the next costs anything::

    size -> parse MIME -> peek header -> client known and active -> (chunk: store; complete?)
    -> already loaded with these bytes? -> verify signature + decrypt -> plausible?
    -> load in ONE transaction (UNIQUE(client, seq) decides duplicates)

Every outcome is a ``Verdict``: ``loaded``, ``duplicate`` (changes nothing), ``chunk_stored``
(waiting for the rest of a chunked report; chunks live in the database, so any order across
restarts works), or ``quarantined`` with the stable reason code of the error that stopped it.

No single message can stop the ones behind it: whatever it raises, including a value the database
refuses (``DataRefused``), it is quarantined (``internal_error`` when no check of ours caught it
first). Only a failure of the database itself (``DatabaseError``: connection lost, locked, disk
full) is NOT a verdict: it propagates, so the caller leaves the mail where it is and tries again
later; nothing is lost and nothing is quarantined for the database's fault. A message on which
the database fails ``MAX_DATABASE_FAILURES`` times in a row while it can still record a quarantine
is quarantined after all, so that even a fault we did not foresee stalls nothing for long.

>>> v = Verdict(outcome="quarantined", reason="not_fsm_mail")
>>> v.outcome, v.reason
('quarantined', 'not_fsm_mail')
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from fsm_protocol import chunking, envelope, mime
from fsm_protocol.errors import ChunkError, FsmError, TooLarge
from fsm_protocol.header import MAGIC, Header
from fsm_protocol.keys import EncryptionKey
from fsm_protocol.schema import (
    INT32_RANGE,
    MAX_SEQ,
    SUPPLY_PERCENT_RANGE,
    SUPPLY_VALUE_RANGE,
    TICKS_RANGE,
    TRAYS_RANGE,
    Device,
    Report,
)
from fsm_protocol.vocabulary import is_counter_name

from ..config import IngestSection, OrdersSection
from ..db.connect import Database, DuplicateKey
from ..db.loader import CounterPolicy, EnvelopeMeta, LoadedEnvelope, Loader
from ..db.models import Quarantine
from ..errors import DatabaseError, DataRefused, Implausible, IngestError, SeqConflict
from ..registry import Registry

log = logging.getLogger("fsm_server.ingest")

Outcome = Literal["loaded", "duplicate", "chunk_stored", "quarantined"]
OUTCOMES: tuple[str, ...] = ("loaded", "duplicate", "chunk_stored", "quarantined")

#: Every reason a message can be quarantined for (the codes of the errors that decide it).
QUARANTINE_REASONS: tuple[str, ...] = (
    "not_fsm_mail",
    "malformed_mime",
    "too_large",
    "malformed",
    "unknown_client",
    "revoked_client",
    "unknown_key",
    "bad_signature",
    "decryption_failed",
    "bad_schema",
    "version_not_supported",
    "bad_chunk",
    "implausible",
    "seq_conflict",
    "customer_mismatch",
    "internal_error",
)

_MAX_COUNTER = MAX_SEQ
#: Failures of the database on one message, in a row, before it is quarantined anyway.
MAX_DATABASE_FAILURES = 5
_BUG_HINT = "this is a bug in fsm; report it with `fsm-server quarantine show ID`"


class Verdict(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What became of one message."""

    outcome: Outcome
    reason: str = ""
    detail: str = ""
    client: str | None = None
    seq: int | None = None
    chunk: str | None = None  # "i/n" for a chunk
    envelope_id: int | None = None
    quarantine_id: int | None = None
    repeat: bool = False  # quarantined: these exact bytes were in quarantine already
    devices: int = 0
    values: int = 0
    flagged: int = 0


@dataclass
class Tally:
    """Counts of verdicts, for progress bars and the daemon's summary line."""

    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    devices: int = 0
    values: int = 0

    def add(self, verdict: Verdict) -> None:
        self.outcomes[verdict.outcome] += 1
        if verdict.outcome == "quarantined":
            self.reasons[verdict.reason] += 1
        self.devices += verdict.devices
        self.values += verdict.values

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def summary(self) -> str:
        """One line: ``12 messages: 9 loaded, 1 duplicate, 0 chunk_stored, 2 quarantined (...)``."""
        parts = ", ".join(f"{self.outcomes[o]} {o}" for o in OUTCOMES)
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.reasons.items()))
        return f"{self.total} messages: {parts}" + (f" ({why})" if why else "")

    def to_dict(self) -> dict[str, object]:
        return {
            **{o: self.outcomes[o] for o in OUTCOMES},
            "quarantined_by_reason": dict(self.reasons),
            "devices": self.devices,
            "values": self.values,
        }


@dataclass
class _Message:
    raw: bytes
    source: str
    received_at: datetime
    message_id: str | None = None
    client: str | None = None
    seq: int | None = None
    chunk: str | None = None
    chunk_set: tuple[int, int] | None = None  # (client pk, seq) whose pending chunks to drop on failure


def _bound(d: Device, what: str, value: float | None, limits: tuple[float, float]) -> None:
    if value is not None and not limits[0] <= value <= limits[1]:
        raise Implausible(
            f"device {d.ip} reports {what} {value}, outside {limits[0]:g}..{limits[1]:g}",
            hint="the device answers nonsense, or the client is broken; check both (the "
            "report stays in quarantine, later ones load once the values are sane)",
        )


def check_numbers(d: Device) -> None:
    """Every number of one reading within what it can be (Implausible otherwise): supplies as the
    Printer-MIB allows them, sentinels -1/-2/-3 included; TimeTicks; Integer32 indexes."""
    _bound(d, "uptime_ticks", d.uptime_ticks, TICKS_RANGE)
    _bound(d, "trays", d.capabilities.trays, TRAYS_RANGE)
    for s in d.supplies:
        name = f"supply {(s.description or s.kind)!r}"
        _bound(d, f"{name} index", s.index, INT32_RANGE)
        _bound(d, f"{name} level", s.level, SUPPLY_VALUE_RANGE)
        _bound(d, f"{name} max", s.max, SUPPLY_VALUE_RANGE)
        _bound(d, f"{name} percent", s.percent, SUPPLY_PERCENT_RANGE)
    for a in d.alerts:
        name = f"alert {a.code}"
        for attr in ("index", "group_index", "location"):
            _bound(d, f"{name} {attr}", getattr(a, attr), INT32_RANGE)
        _bound(d, f"{name} time_ticks", a.time_ticks, TICKS_RANGE)


class Pipeline:
    """Check and load messages into one database.

    >>> # pipeline = Pipeline(db, Registry(db), load_encryption_key(path), limits=config.ingest)
    >>> # pipeline.process(raw_mail, source="imap:dealer@host/INBOX:42").outcome
    """

    def __init__(
        self,
        db: Database,
        registry: Registry,
        encryption_key: EncryptionKey,
        *,
        limits: IngestSection | None = None,
        now: Callable[[], datetime] | None = None,
        orders: OrdersSection | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.encryption_key = encryption_key
        self.limits = limits or IngestSection()
        self.now = now or (lambda: datetime.now(UTC))
        self.loader = Loader(
            db,
            policy=CounterPolicy(max_pages_per_day=self.limits.max_pages_per_day),
            now=self.now,
            orders=orders,
        )
        self._failures: dict[str, int] = {}  # sha256 of a message -> database failures in a row

    # -- entry points ------------------------------------------------------------------------------

    def process(self, raw: bytes, *, source: str = "", received_at: datetime | None = None) -> Verdict:
        """One mail (RFC 5322 bytes) or one bare envelope/chunk (``.fsm`` file) -> its verdict.

        Raises only DatabaseError (the database is unusable: leave the message and retry later).
        """
        msg = _Message(raw=raw, source=source, received_at=received_at or self.now())
        try:
            try:
                verdict = self._process(msg)
            except DataRefused as exc:  # this message's values, not the database: never retried
                log.error("the database refused %s: %s", source or "a message", exc.message)
                verdict = self._quarantine(msg, "internal_error", exc.message, _BUG_HINT)
            except DatabaseError:
                raise
            except FsmError as exc:
                verdict = self._quarantine(msg, exc.reason, exc.message, exc.hint)
            except Exception as exc:  # a bug, but one mail must never stop the daemon
                log.exception("unexpected error on %s", source or "a message")
                verdict = self._quarantine(msg, "internal_error", f"{type(exc).__name__}: {exc}", _BUG_HINT)
        except DatabaseError as exc:  # also while quarantining: the database failed, not the message
            return self._database_failed(msg, exc)
        if self._failures:
            self._failures.pop(hashlib.sha256(raw).hexdigest(), None)
        return verdict

    def _database_failed(self, msg: _Message, exc: DatabaseError) -> Verdict:
        """Re-raise a failure of the database, unless it failed on this very message too often."""
        # a fresh connection for the next attempt: a broken one would fail forever
        self.db.close()
        key = hashlib.sha256(msg.raw).hexdigest()
        if len(self._failures) > 1000:
            self._failures.clear()
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        if failures < MAX_DATABASE_FAILURES:
            raise exc
        try:
            verdict = self._quarantine(
                msg,
                "internal_error",
                f"the database failed {failures} times in a row on this message, last: {exc.message}",
                "if the database is healthy, this message makes it fail: " + _BUG_HINT,
            )
        except DatabaseError:
            raise exc from None
        self._failures.pop(key, None)
        log.error(
            "quarantined %s after %d database failures: %s", msg.source or "a message", failures, exc.message
        )
        return verdict

    def quarantine_oversize(
        self, head: bytes, *, size: int, sha256: str, source: str = "", received_at: datetime | None = None
    ) -> Verdict:
        """Quarantine a message too large to hold, from its first bytes, size and hash (streamed input)."""
        msg = _Message(raw=head, source=source, received_at=received_at or self.now())
        detail = f"mail is {size} bytes, over the limit of {self.limits.max_mail_bytes}"
        qid, repeat = self.loader.quarantine(
            sha256=sha256,
            reason="too_large",
            detail=detail,
            hint="raise [ingest] max_mail_bytes only if clients send mails this large",
            raw=head[: self.limits.quarantine_keep_bytes],
            raw_size=size,
            source=source,
            message_id=None,
            client_name=None,
            seq=None,
            received_at=msg.received_at,
        )
        return Verdict(
            outcome="quarantined", reason="too_large", detail=detail, quarantine_id=qid, repeat=repeat
        )

    def retry(self, quarantine_id: int) -> Verdict:
        """Run a quarantined message through the pipeline again (e.g. after `clients add`)."""
        from ..db.connect import translated

        with translated(f"cannot read quarantine entry {quarantine_id}"):
            row = Quarantine.get_or_none(Quarantine.id == quarantine_id)
        if row is None:
            raise IngestError(f"no quarantine entry {quarantine_id}", hint="see `fsm-server quarantine list`")
        raw = bytes(row.raw)
        if row.raw_size > len(raw):
            raise IngestError(
                f"quarantine entry {quarantine_id} kept only {len(raw)} of {row.raw_size} bytes",
                hint="re-import the original from the mailbox's FSM/Quarantine folder or the archive",
            )
        verdict = self.process(raw, source=row.source, received_at=row.received_at)
        if verdict.outcome != "quarantined":
            self.loader.release(quarantine_id)
        return verdict

    # -- the steps -----------------------------------------------------------------------------------

    def _process(self, msg: _Message) -> Verdict:
        limits = self.limits
        data = msg.raw
        if not data.startswith(MAGIC):
            if len(data) > limits.max_mail_bytes:
                raise TooLarge(
                    f"mail is {len(data)} bytes, over the limit of {limits.max_mail_bytes}",
                    hint="raise [ingest] max_mail_bytes only if clients send mails this large",
                )
            mail = mime.parse_message(data, max_bytes=limits.max_mail_bytes)
            data, msg.message_id = mail.envelope, mail.message_id
        header = envelope.peek(data, max_bytes=limits.max_envelope_bytes)
        msg.client, msg.seq = header.client_id, header.seq
        if not 1 <= header.seq <= MAX_SEQ:  # before any row holds it: columns are signed 64-bit
            raise Implausible(
                f"report seq {header.seq} is outside 1..{MAX_SEQ}, the numbers a client counts",
                hint="the client's numbering is broken: see `fsm-client outbox renumber`",
            )
        keys = self.registry.keys_for(header.client_id, now=self.now())
        meta = EnvelopeMeta(
            client_id=keys.id,
            client_name=keys.name,
            sha256="",
            message_id=msg.message_id,
            source=msg.source,
            received_at=msg.received_at,
        )
        if header.is_chunk:
            msg.chunk = f"{header.chunk_index}/{header.chunk_count}"
            loaded = self.loader.loaded(keys.id, header.seq)
            if loaded is not None and loaded.sealing in (None, header.ephemeral_key.hex()):
                # a chunk of the envelope loaded already: a resend when it is the chunk loaded
                digests = loaded.chunk_digests
                if (
                    digests
                    and len(digests) == header.chunk_count
                    and hashlib.sha256(data).hexdigest() != digests[header.chunk_index - 1]
                ):
                    raise ChunkError(
                        f"chunk {msg.chunk} of {header.client_id} #{header.seq} differs from the chunk "
                        f"loaded at that position: it was altered in transit",
                        hint="the report is loaded from the genuine chunks; this copy stays in quarantine",
                    )
                return self._verdict("duplicate", msg)
            parts = self.loader.store_chunk(
                meta, seq=header.seq, index=header.chunk_index, count=header.chunk_count, data=data
            )
            if parts is None:
                return self._verdict("chunk_stored", msg)
            msg.chunk_set = (keys.id, header.seq)
            meta.chunk_digests = [hashlib.sha256(p).hexdigest() for p in parts]
            data = chunking.join(parts, max_bytes=limits.max_envelope_bytes)
            msg.raw = data  # from here on, quarantine keeps the whole envelope (retry-able)
            header = envelope.peek(data, max_bytes=limits.max_envelope_bytes)
            meta.chunk_count = len(parts)
        meta.sha256, meta.sealing = hashlib.sha256(data).hexdigest(), header.ephemeral_key.hex()
        loaded = self.loader.loaded(keys.id, header.seq)
        if loaded is not None and loaded.sha256 == meta.sha256:
            self._drop_chunks(msg)
            return self._verdict("duplicate", msg)
        report = envelope.open_envelope(
            data,
            verify_key=keys.for_fingerprint(header.signer_fingerprint),
            encryption_key=self.encryption_key,
            max_envelope_bytes=limits.max_envelope_bytes,
            max_report_bytes=limits.max_report_bytes,
        )
        if loaded is not None:
            if report.created_at == loaded.created_at:  # the same report, sealed again: a resend
                self._drop_chunks(msg)
                return self._verdict("duplicate", msg)
            raise self.seq_conflict(keys.id, report, loaded)
        self.check_plausible(report, header)
        try:
            stored = self.loader.load(report, meta)
        except DuplicateKey:
            return self._verdict("duplicate", msg)
        claimed = stored.claimed_customer
        return Verdict(
            outcome="loaded",
            detail=""
            if claimed is None
            else f"the report names customer {claimed!r}, not its client's: "
            "loaded under the client's customer and flagged in health",
            client=msg.client,
            seq=msg.seq,
            chunk=msg.chunk,
            envelope_id=stored.envelope_id,
            devices=stored.devices,
            values=stored.values,
            flagged=len(stored.flagged),
        )

    def seq_conflict(self, client_pk: int, report: Report, loaded: LoadedEnvelope) -> SeqConflict:
        """A different report under a loaded number: the client counts again from an earlier point."""
        last = self.loader.last_seq(client_pk)
        return SeqConflict(
            f"client {report.client_id!r} sent report #{report.seq} created {report.created_at.isoformat()}, "
            f"but #{report.seq} is loaded already from a report created {loaded.created_at.isoformat()}: "
            f"the client numbers its reports again from an earlier point (its data directory was reset "
            f"or restored from a backup); the highest number loaded for it is {last}",
            hint=f"on the client run `fsm-client outbox renumber --after {last}`: it seals these reports "
            f"again under new numbers, which load; then `fsm-server quarantine dismiss` this entry",
        )

    def check_plausible(self, report: Report, header: Header) -> None:
        """Refuse a report that verifies but cannot be true (Implausible, reason "implausible")."""
        now = self.now()
        ahead = timedelta(seconds=self.limits.future_tolerance_seconds)
        hint = "fix the client's clock (NTP), then `fsm-server quarantine retry ID`"
        if not 1 <= report.seq <= MAX_SEQ:
            raise Implausible(f"report seq {report.seq} is outside 1..{MAX_SEQ}")
        if report.resend_of is not None and not 1 <= report.resend_of <= MAX_SEQ:
            raise Implausible(f"report #{report.seq} resends #{report.resend_of}, outside 1..{MAX_SEQ}")
        if report.created_at > now + ahead:
            raise Implausible(
                f"report #{report.seq} was created at {report.created_at.isoformat()}, "
                f"{report.created_at - now} in the future (tolerance {ahead})",
                hint=hint,
            )
        if report.created_at < now - timedelta(days=self.limits.max_age_days):
            raise Implausible(
                f"report #{report.seq} was created at {report.created_at.isoformat()}, "
                f"more than {self.limits.max_age_days} days ago",
                hint=hint,
            )
        if len(report.devices) > self.limits.max_devices:
            raise Implausible(
                f"report #{report.seq} has {len(report.devices)} readings, "
                f"over the limit of {self.limits.max_devices}",
                hint="raise [ingest] max_devices if a site really has that many",
            )
        oldest = report.created_at - timedelta(days=self.limits.max_age_days)
        for d in report.devices:
            if d.observed_at > now + ahead or d.observed_at > report.created_at + ahead:
                raise Implausible(
                    f"device {d.ip} was observed at {d.observed_at.isoformat()}, after the "
                    f"report was created ({report.created_at.isoformat()})",
                    hint=hint,
                )
            if d.observed_at < oldest:
                raise Implausible(
                    f"device {d.ip} was observed at {d.observed_at.isoformat()}, more than "
                    f"{self.limits.max_age_days} days before the report was created",
                    hint=hint,
                )
            check_numbers(d)
            for name, value in d.counters.items():
                if not is_counter_name(name):
                    raise Implausible(
                        f"device {d.ip} reports counter {name!r}, which is no canonical name",
                        hint="the client's PMD pool is broken; update it",
                    )
                if not 0 <= value <= _MAX_COUNTER:
                    raise Implausible(f"device {d.ip} counter {name} = {value} is out of range")

    # -- outcomes ---------------------------------------------------------------------------------------

    def _drop_chunks(self, msg: _Message) -> None:
        if msg.chunk_set is not None:
            self.loader.drop_chunks(*msg.chunk_set)

    @staticmethod
    def _verdict(outcome: Outcome, msg: _Message) -> Verdict:
        return Verdict(outcome=outcome, client=msg.client, seq=msg.seq, chunk=msg.chunk)

    def _quarantine(self, msg: _Message, reason: str, detail: str, hint: str) -> Verdict:
        raw = msg.raw
        kept = raw if len(raw) <= self.limits.max_mail_bytes else raw[: self.limits.quarantine_keep_bytes]
        qid, repeat = self.loader.quarantine(
            sha256=hashlib.sha256(raw).hexdigest(),
            reason=reason,
            detail=detail,
            hint=hint,
            raw=kept,
            raw_size=len(raw),
            source=msg.source,
            message_id=msg.message_id,
            client_name=msg.client,
            seq=msg.seq,
            received_at=msg.received_at,
            drop_chunks_of=msg.chunk_set,
        )
        log.info("quarantined %s (%s): %s", msg.source or "message", reason, detail)
        return Verdict(
            outcome="quarantined",
            reason=reason,
            detail=detail,
            client=msg.client,
            seq=msg.seq,
            chunk=msg.chunk,
            quarantine_id=qid,
            repeat=repeat,
        )


__all__ = [
    "MAX_DATABASE_FAILURES",
    "OUTCOMES",
    "QUARANTINE_REASONS",
    "Outcome",
    "Pipeline",
    "Tally",
    "Verdict",
    "check_numbers",
]

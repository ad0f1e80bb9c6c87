"""Build a Report from the store and queue it sealed in the outbox, in one transaction.

``queue_report`` is the only place a sequence number is taken: it reads the readings to
carry, takes the next number, builds and seals the report, stores the sealed chunks and
the exact plaintext, and marks the readings as carried, all inside one ``Store.atomic()``.
A crash at any point leaves either all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from fsm_protocol.chunking import join, split
from fsm_protocol.envelope import seal
from fsm_protocol.errors import ConfigError
from fsm_protocol.keys import ServerPublicKey, SigningKey, load_server_public_key, load_signing_key
from fsm_protocol.schema import Report, ReportKind, decode_report, encode_report, utcnow

from .config import MIN_CHUNK_BYTES, ClientConfig
from .errors import StoreError
from .store import Store, StoredReading

#: Where the signing key lives when [keys] signing_key is not set.
DEFAULT_SIGNING_KEY = Path("keys") / "client.key"


@dataclass
class Sealer:
    """Seals reports with the client's signing key to the server's public key, then splits
    the envelope into chunks of at most ``chunk_bytes``."""

    signing_key: SigningKey
    server_key: ServerPublicKey
    chunk_bytes: int

    @classmethod
    def from_config(cls, config: ClientConfig, data_dir: Path) -> Sealer:
        key_path = config.keys.signing_key or (data_dir / DEFAULT_SIGNING_KEY)
        if config.keys.server_public_key is None:
            raise ConfigError(
                "no server public key configured: reports cannot be sealed",
                hint="set [keys] server_public_key to the dealer's server.pub file",
            )
        if not Path(key_path).exists():
            raise ConfigError(
                f"the client signing key {str(key_path)!r} does not exist",
                hint="run `fsm-client keys init` (or set [keys] signing_key)",
            )
        if config.outbox.chunk_bytes < MIN_CHUNK_BYTES:
            raise ConfigError(
                f"[outbox] chunk_bytes = {config.outbox.chunk_bytes} is too small for a chunk",
                hint=f"use at least {MIN_CHUNK_BYTES}; the relay's message size limit, "
                "minus a third for base64, is the right value",
            )
        return cls(
            signing_key=load_signing_key(key_path),
            server_key=load_server_public_key(Path(config.keys.server_public_key)),
            chunk_bytes=config.outbox.chunk_bytes,
        )

    def seal(self, report: Report, *, now: datetime) -> list[bytes]:
        envelope = seal(report, signing_key=self.signing_key, server_key=self.server_key, now=now)
        return split(envelope, self.chunk_bytes)


@dataclass(frozen=True)
class Queued:
    """What ``queue_report`` stored."""

    seq: int
    kind: str
    devices: int
    chunks: int
    reading_ids: tuple[int, ...]


def build_report(
    config: ClientConfig,
    *,
    kind: ReportKind,
    seq: int,
    readings: Sequence[StoredReading],
    now: datetime,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    pmd_bundle: str | None = None,
) -> Report:
    """The Report that carries ``readings`` (oldest first) under number ``seq``; ``pmd_bundle``
    names the active PMD bundle (``pmd.active.bundle_label``)."""
    return Report(
        client_id=config.client.id,
        customer=config.client.customer,
        site=config.client.site,
        seq=seq,
        kind=kind,
        created_at=now,
        period_start=period_start,
        period_end=period_end,
        pmd_bundle=pmd_bundle,
        devices=[r.device for r in readings],
    )


def queue_report(
    store: Store,
    sealer: Sealer,
    config: ClientConfig,
    *,
    kind: ReportKind,
    now: datetime | None = None,
    reading_ids: Sequence[int] | None = None,
    also: Callable[[int], None] | None = None,
    pmd_bundle: str | None = None,
) -> Queued:
    """Seal a report into the outbox.

    ``periodic``/``inventory`` reports carry every full-read ("scan") reading not yet in an
    envelope; ``alert`` reports carry exactly ``reading_ids``. ``also(seq)`` runs inside
    the same transaction (alert state, schedule state), so it commits with the envelope or
    not at all. ``pmd_bundle``: the active PMD bundle the report names.
    """
    now = now or utcnow()
    with store.atomic():
        if reading_ids is None:
            readings = store.unreported_readings(kinds=("scan",))
        else:
            readings = [r for r in store.readings_by_id(reading_ids) if r.reported_seq is None]
        period_start = period_end = None
        if kind == "periodic":
            period_start, period_end = store.meta_time("last_period_end"), now
        seq = store.next_seq()
        report = build_report(
            config,
            kind=kind,
            seq=seq,
            readings=readings,
            now=now,
            period_start=period_start,
            period_end=period_end,
            pmd_bundle=pmd_bundle,
        )
        chunks = sealer.seal(report, now=now)  # sets report.sealed_at
        store.add_envelope(seq, kind=kind, created_at=now, plaintext=encode_report(report), chunks=chunks)
        ids = tuple(r.id for r in readings)
        store.mark_reported(ids, seq)
        if kind == "periodic":
            store.set_meta_time("last_period_end", now)
        if also is not None:
            also(seq)
    return Queued(seq=seq, kind=kind, devices=len(readings), chunks=len(chunks), reading_ids=ids)


def rechunk(store: Store, seq: int, chunk_bytes: int) -> int:
    """Split the unsent envelope ``seq`` again into chunks of at most ``chunk_bytes`` (for a relay
    that refuses its mails as too large); returns the new number of chunks."""
    if chunk_bytes < MIN_CHUNK_BYTES:
        raise ConfigError(f"chunk size {chunk_bytes} is too small", hint=f"use at least {MIN_CHUNK_BYTES}")
    chunks = store.chunks(seq)
    if not chunks:
        raise StoreError(
            f"the sealed envelope of report {seq} is not kept (sent and past retention?)",
            hint="`fsm-client outbox list` shows which reports are retained",
        )
    new = split(join(chunks), chunk_bytes)
    store.replace_chunks(seq, new)
    return len(new)


@dataclass(frozen=True)
class Renumbered:
    """What ``renumber`` did."""

    moved: tuple[tuple[int, int], ...]  # (old number, new number), oldest first
    purged: tuple[int, ...]  # numbers it could not seal again: their plaintext is past retention
    next_seq: int  # the number the next report gets


def renumber(store: Store, sealer: Sealer, *, after: int, now: datetime | None = None) -> Renumbered:
    """Seal every kept report numbered ``after`` or lower again under a number above ``after``
    (and above every number the store has used), oldest first; later reports count on from there.

    For a client whose data directory was reset while it kept its key: it counts from 1 again,
    and the server quarantines its reports as ``seq_conflict``, naming ``after`` (the highest
    number it has loaded). The readings inside are unchanged; ``sealed_at`` is now.
    """
    if after < 0:
        raise StoreError(f"--after {after} is negative", hint="give the number the server names")
    now = now or utcnow()
    moved: list[tuple[int, int]] = []
    purged: list[int] = []
    with store.atomic():
        store.skip_seq_to(after)
        for entry in store.outbox():
            if entry.seq > after:
                continue
            try:
                plaintext = store.plaintext(entry.seq)
            except StoreError:
                purged.append(entry.seq)
                continue
            report = decode_report(plaintext)
            report.seq = store.next_seq()
            chunks = sealer.seal(report, now=now)
            store.renumber(entry.seq, report.seq, plaintext=encode_report(report), chunks=chunks)
            moved.append((entry.seq, report.seq))
        next_seq = store.last_seq() + 1
    return Renumbered(moved=tuple(moved), purged=tuple(purged), next_seq=next_seq)


REDACTED = "<redacted>"


def redacted(plaintext: bytes, *, ips: bool = False, locations: bool = False) -> dict[str, Any]:
    """A stored report plaintext as data, with device IP addresses (``ip`` and values that
    quote them, such as warnings) and/or locations and contacts replaced by ``<redacted>``."""
    data: dict[str, Any] = msgspec.json.decode(plaintext)
    for device in data.get("devices", []):
        if ips and "ip" in device:
            address = device["ip"]
            device["ip"] = REDACTED
            device["warnings"] = [w.replace(address, REDACTED) for w in device.get("warnings", [])]
        if locations:
            for key in ("location", "contact"):
                if key in device:
                    device[key] = REDACTED
    return data


__all__ = [
    "DEFAULT_SIGNING_KEY",
    "MIN_CHUNK_BYTES",
    "REDACTED",
    "Queued",
    "Renumbered",
    "Sealer",
    "build_report",
    "queue_report",
    "rechunk",
    "redacted",
    "renumber",
]

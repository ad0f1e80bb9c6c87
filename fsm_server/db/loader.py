"""Write a checked report into the database in ONE transaction, and keep chunks and quarantine.

Idempotence rests on the database, not on a read before the write: the envelope row goes in
first and UNIQUE(client, seq) refuses a second one, so two loaders racing on one report (two
daemons, a daemon and an import) load it once; the loser's transaction rolls back whole and
becomes a "duplicate" verdict.

Each table gets one multi-row statement per report (RETURNING gives the new ids), so a report
of 50 devices costs about ten statements, not hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import peewee
from peewee import EXCLUDED, Case, fn

from fsm_protocol.schema import Device as DeviceReading
from fsm_protocol.schema import Report

from .connect import Database, DuplicateKey, translated
from .models import (
    AlertValue,
    CounterLatest,
    CounterValue,
    Customer,
    Device,
    DeviceAddress,
    Envelope,
    PendingChunk,
    Quarantine,
    Reading,
    Site,
    SupplyValue,
    device_identity,
)

_BATCH = 500  # rows per INSERT (SQLite allows 32,766 bound values per statement)
_WRAP_32 = 2**32


@dataclass
class CounterPolicy:
    """When a counter change is flagged (stored anyway, never replaced)."""

    max_pages_per_day: int = 200_000
    slack: int = 10_000  # a jump smaller than this is never flagged

    def flag(self, previous: int, value: int, elapsed: timedelta, *, strong_identity: bool) -> str | None:
        """``reset``/``wrap``/``device_swap`` for a counter that went backwards, ``jump`` for too far."""
        if value < previous:
            if previous >= _WRAP_32 * 7 // 8 and value < _WRAP_32 // 8:
                return "wrap"  # a 32-bit counter passed 4,294,967,295
            return "reset" if strong_identity else "device_swap"
        days = max(elapsed.total_seconds(), 3600.0) / 86400
        if value - previous > self.slack + self.max_pages_per_day * days:
            return "jump"
        return None


@dataclass
class Loaded:
    """What a load wrote."""

    envelope_id: int
    devices: int
    values: int
    flagged: list[tuple[str, str, str]] = field(default_factory=list)  # (identity, counter, flag)


@dataclass
class EnvelopeMeta:
    client_id: int
    client_name: str
    sha256: str
    message_id: str | None
    source: str
    received_at: datetime
    chunk_count: int = 1


def _latest(a: datetime, b: datetime) -> datetime:
    return a if a >= b else b


class Loader:
    """The write side of ingest, on one open database."""

    def __init__(self, db: Database, *, policy: CounterPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or CounterPolicy()
        self._sites: dict[tuple[str, str], int | None] = {}

    # -- reads used before the expensive work ----------------------------------------------------

    def loaded_sha256(self, client_id: int, seq: int) -> str | None:
        """The sha256 of the envelope loaded as (client, seq), or None when there is none."""
        with translated("cannot look up an envelope"):
            row = Envelope.select(Envelope.sha256).where(
                Envelope.client == client_id, Envelope.seq == seq).first()
            return row.sha256 if row else None

    # -- chunks ------------------------------------------------------------------------------------

    def store_chunk(self, meta: EnvelopeMeta, *, seq: int, index: int, count: int,
                    data: bytes) -> list[bytes] | None:
        """Keep one chunk; when it completes its set, return every chunk's bytes (still stored)."""
        with translated("cannot store a chunk"), self.db.atomic():
            if self.db.kind == "postgresql":
                # Two loaders storing the last two chunks at once must not both see an incomplete set.
                self.db.peewee.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)",
                                           (meta.client_id, seq % 2**31))
            PendingChunk.insert(
                client=meta.client_id, seq=seq, chunk_index=index, chunk_count=count, data=data,
                message_id=meta.message_id, source=meta.source, received_at=meta.received_at,
            ).on_conflict_ignore().execute()
            rows = list(PendingChunk.select(PendingChunk.chunk_index, PendingChunk.chunk_count)
                        .where(PendingChunk.client == meta.client_id, PendingChunk.seq == seq))
            have = {r.chunk_index for r in rows if r.chunk_count == count}
            if len(have) < count:
                return None
            return [bytes(r.data) for r in PendingChunk.select(PendingChunk.data).where(
                PendingChunk.client == meta.client_id, PendingChunk.seq == seq,
                PendingChunk.chunk_count == count).order_by(PendingChunk.chunk_index)]

    def drop_chunks(self, client_id: int, seq: int) -> None:
        with translated("cannot delete chunks"):
            PendingChunk.delete().where(PendingChunk.client == client_id, PendingChunk.seq == seq).execute()

    # -- quarantine ----------------------------------------------------------------------------------

    def quarantine(self, *, sha256: str, reason: str, detail: str, hint: str, raw: bytes, raw_size: int,
                   source: str, message_id: str | None, client_name: str | None, seq: int | None,
                   received_at: datetime, drop_chunks_of: tuple[int, int] | None = None) -> tuple[int, bool]:
        """Keep a message with why; returns (quarantine id, whether these bytes were held already)."""
        now = datetime.now(UTC)
        with translated("cannot quarantine a message"), self.db.atomic():
            if drop_chunks_of is not None:
                self.drop_chunks(*drop_chunks_of)
            existing = Quarantine.get_or_none(Quarantine.sha256 == sha256)
            if existing is not None:
                if existing.status == "held" and (existing.reason, existing.detail) != (reason, detail):
                    existing.reason, existing.detail, existing.hint = reason, detail, hint
                    existing.save()
                return existing.id, True
            q = Quarantine.insert(
                sha256=sha256, reason=reason, detail=detail, hint=hint, raw=raw, raw_size=raw_size,
                source=source, message_id=message_id, client_name=client_name, seq=seq,
                received_at=received_at, quarantined_at=now,
            ).on_conflict_ignore().execute()
            if not q:  # another loader kept the same bytes a moment ago
                return Quarantine.get(Quarantine.sha256 == sha256).id, True
            return int(q), False

    def release(self, quarantine_id: int) -> None:
        with translated("cannot update the quarantine"):
            Quarantine.update(status="released", released_at=datetime.now(UTC)).where(
                Quarantine.id == quarantine_id).execute()

    # -- the report ---------------------------------------------------------------------------------

    def load(self, report: Report, meta: EnvelopeMeta) -> Loaded:
        """Write ``report`` and everything in it; DuplicateKey when (client, seq) is loaded already."""
        with translated(f"cannot load report {meta.client_name} #{report.seq}"), self.db.atomic():
            return self._load(report, meta)

    def _load(self, report: Report, meta: EnvelopeMeta) -> Loaded:
        now = datetime.now(UTC)
        try:
            with self.db.peewee.atomic():  # a savepoint, so a duplicate leaves nothing behind
                envelope_id = Envelope.insert(
                    client=meta.client_id, seq=report.seq, kind=report.kind, message_id=meta.message_id,
                    sha256=meta.sha256, chunk_count=meta.chunk_count, source=meta.source,
                    created_at=report.created_at, received_at=meta.received_at, ingested_at=now,
                    resend_of=report.resend_of,
                ).execute()
        except peewee.IntegrityError as exc:
            raise DuplicateKey(f"report {meta.client_name} #{report.seq} is loaded already") from exc
        if meta.chunk_count > 1:
            self.drop_chunks(meta.client_id, report.seq)
        site_id = self._site(report.customer, report.site)
        readings = report.devices
        if not readings:
            return Loaded(envelope_id=int(envelope_id), devices=0, values=0)

        # Devices: one upsert; the newest reading decides the current ip/model/...
        idents: list[tuple[str, bool]] = []
        newest: dict[str, DeviceReading] = {}
        first: dict[str, datetime] = {}
        for d in readings:
            ident = device_identity(client=meta.client_name, manufacturer=d.manufacturer, serial=d.serial,
                                    mac=d.mac, ip=d.ip)
            idents.append(ident)
            cur = newest.get(ident[0])
            if cur is None or d.observed_at >= cur.observed_at:
                newest[ident[0]] = d
            first[ident[0]] = min(first.get(ident[0], d.observed_at), d.observed_at)
        device_ids = self._upsert_devices(newest, first, meta.client_id, site_id)

        # Address history.
        addresses: dict[tuple[int, str, str], tuple[datetime, datetime]] = {}
        for d, (ident, _) in zip(readings, idents, strict=True):
            key = (device_ids[ident], d.ip, (d.mac or "").lower())
            lo, hi = addresses.get(key, (d.observed_at, d.observed_at))
            addresses[key] = (min(lo, d.observed_at), max(hi, d.observed_at))
        self._insert(DeviceAddress, [
            {"device": k[0], "ip": k[1], "mac": k[2], "first_seen": v[0], "last_seen": v[1]}
            for k, v in addresses.items()
        ], conflict=([DeviceAddress.device, DeviceAddress.ip, DeviceAddress.mac], {
            DeviceAddress.first_seen: fn.MIN(DeviceAddress.first_seen, EXCLUDED.first_seen)
            if self.db.kind == "sqlite" else fn.LEAST(DeviceAddress.first_seen, EXCLUDED.first_seen),
            DeviceAddress.last_seen: fn.MAX(DeviceAddress.last_seen, EXCLUDED.last_seen)
            if self.db.kind == "sqlite" else fn.GREATEST(DeviceAddress.last_seen, EXCLUDED.last_seen),
        }))

        # Readings, ids back in order.
        reading_rows = [{
            "envelope": envelope_id, "device": device_ids[ident], "observed_at": d.observed_at, "ip": d.ip,
            "reachability": d.reachability, "device_status": d.status.device,
            "printer_status": d.status.printer, "conditions": d.status.conditions or None,
            "console": d.status.console, "uptime_ticks": d.uptime_ticks, "warnings": d.warnings or None,
        } for d, (ident, _) in zip(readings, idents, strict=True)]
        reading_ids = self._insert_returning_ids(Reading, reading_rows)

        values, flagged = self._counters(readings, idents, device_ids, reading_ids)
        supply_rows = [{
            "reading": rid, "index": s.index, "description": s.description, "kind": s.kind, "color": s.color,
            "level": s.level, "max": s.max, "unit": s.unit, "percent": s.percent, "state": s.state,
        } for d, rid in zip(readings, reading_ids, strict=True) for s in d.supplies]
        self._insert(SupplyValue, supply_rows)
        alert_rows = [{
            "reading": rid, "code": a.code, "severity": a.severity, "group": a.group,
            "group_index": a.group_index, "location": a.location, "description": a.description,
            "index": a.index, "training": a.training, "time_ticks": a.time_ticks,
            "observed_at": d.observed_at,
        } for d, rid in zip(readings, reading_ids, strict=True) for a in d.alerts]
        self._insert(AlertValue, alert_rows)
        values += len(supply_rows) + len(alert_rows)
        Envelope.update(devices=len(newest), values=values).where(Envelope.id == envelope_id).execute()
        return Loaded(envelope_id=int(envelope_id), devices=len(newest), values=values, flagged=flagged)

    def _counters(self, readings: list[DeviceReading], idents: list[tuple[str, bool]],
                  device_ids: dict[str, int],
                  reading_ids: list[int]) -> tuple[int, list[tuple[str, str, str]]]:
        ids = sorted(set(device_ids.values()))
        latest: dict[tuple[int, str], tuple[int, datetime]] = {}
        for part in range(0, len(ids), _BATCH):
            for row in CounterLatest.select().where(CounterLatest.device.in_(ids[part:part + _BATCH])):
                latest[(row.device_id, row.name)] = (row.value, row.observed_at)
        changed: dict[tuple[int, str], tuple[int, datetime]] = {}
        rows: list[dict[str, object]] = []
        flagged: list[tuple[str, str, str]] = []
        order = sorted(range(len(readings)), key=lambda i: readings[i].observed_at)
        for i in order:
            d, (ident, strong) = readings[i], idents[i]
            dev = device_ids[ident]
            for name, value in d.counters.items():
                prev = latest.get((dev, name))
                flag = None
                if prev is not None and d.observed_at > prev[1]:
                    flag = self.policy.flag(prev[0], value, d.observed_at - prev[1], strong_identity=strong)
                if flag:
                    flagged.append((ident, name, flag))
                rows.append({"reading": reading_ids[i], "device": dev, "name": name, "value": value,
                             "observed_at": d.observed_at, "flag": flag,
                             "previous": prev[0] if flag and prev else None})
                if prev is None or d.observed_at > prev[1]:
                    latest[(dev, name)] = changed[(dev, name)] = (value, d.observed_at)
        self._insert(CounterValue, rows)
        self._insert(CounterLatest, [
            {"device": k[0], "name": k[1], "value": v[0], "observed_at": v[1]} for k, v in changed.items()
        ], conflict=([CounterLatest.device, CounterLatest.name], {
            CounterLatest.value: Case(None, [(EXCLUDED.observed_at > CounterLatest.observed_at,
                                              EXCLUDED.value)], CounterLatest.value),
            CounterLatest.observed_at: Case(None, [(EXCLUDED.observed_at > CounterLatest.observed_at,
                                                    EXCLUDED.observed_at)], CounterLatest.observed_at),
        }))
        return len(rows), flagged

    def _upsert_devices(self, newest: dict[str, DeviceReading], first: dict[str, datetime],
                        client_id: int, site_id: int | None) -> dict[str, int]:
        rows = [{
            "identity": ident, "client": client_id, "site": site_id, "manufacturer": d.manufacturer,
            "model": d.model, "serial": d.serial, "firmware": d.firmware, "hostname": d.hostname,
            "location": d.location, "pmd": d.pmd, "ip": d.ip, "mac": d.mac,
            "first_seen": first[ident], "last_seen": d.observed_at,
        } for ident, d in newest.items()]
        newer = EXCLUDED.last_seen >= Device.last_seen
        update = {getattr(Device, f): Case(None, [(newer, getattr(EXCLUDED, f))], getattr(Device, f))
                  for f in ("client_id", "site_id", "manufacturer", "model", "serial", "firmware",
                            "hostname", "location", "pmd", "ip", "mac", "last_seen")}
        update[Device.first_seen] = Case(None, [(EXCLUDED.first_seen < Device.first_seen,
                                                 EXCLUDED.first_seen)], Device.first_seen)
        ids: dict[str, int] = {}
        for part in range(0, len(rows), _BATCH):
            q = (Device.insert_many(rows[part:part + _BATCH])
                 .on_conflict(conflict_target=[Device.identity], update=update)
                 .returning(Device.id, Device.identity))
            for row in q.execute():
                ids[row.identity] = row.id
        return ids

    def _site(self, customer: str, site: str) -> int | None:
        if not customer and not site:
            return None
        key = (customer, site)
        if key not in self._sites:
            Customer.insert(name=customer).on_conflict_ignore().execute()
            cust = Customer.get(Customer.name == customer)
            Site.insert(customer=cust.id, name=site).on_conflict_ignore().execute()
            self._sites[key] = Site.get(Site.customer == cust.id, Site.name == site).id
        return self._sites[key]

    def _insert(self, model: type[peewee.Model], rows: list[dict[str, object]],
                conflict: tuple[list[peewee.Field], dict[peewee.Field, object]] | None = None) -> None:
        for part in range(0, len(rows), _BATCH):
            q = model.insert_many(rows[part:part + _BATCH])
            if conflict is not None:
                q = q.on_conflict(conflict_target=conflict[0], update=conflict[1])
            q.as_rowcount().execute()

    def _insert_returning_ids(self, model: type[peewee.Model], rows: list[dict[str, object]]) -> list[int]:
        ids: list[int] = []
        for part in range(0, len(rows), _BATCH):
            q = model.insert_many(rows[part:part + _BATCH]).returning(model.id)
            ids.extend(r.id for r in q.execute())
        return ids


__all__ = ["CounterPolicy", "EnvelopeMeta", "Loaded", "Loader"]

"""Write a checked report into the database in ONE transaction, and keep chunks and quarantine.

Idempotence rests on the database, not on a read before the write: the envelope row goes in
first and UNIQUE(client, seq) refuses a second one, so two loaders racing on one report (two
daemons, a daemon and an import) load it once; the loser's transaction rolls back whole and
becomes a "duplicate" verdict.

Each table gets one multi-row statement per report (RETURNING gives the new ids), so a report
of 50 devices costs about ten statements, not hundreds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import peewee

from fsm_protocol.errors import ChunkError
from fsm_protocol.identity import device_identity
from fsm_protocol.schema import MAX_SEQ, Report
from fsm_protocol.schema import Device as DeviceReading

from ..config import OrdersSection
from ..errors import DataRefused
from ..orders import proposals
from ..tenancy import report_customer
from . import sql, state
from .connect import Database, DuplicateKey, translated
from .models import Envelope, PendingChunk, Quarantine, Site

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
    claimed_customer: str | None = None  # the other customer the report named (fsm_server.tenancy)


@dataclass
class EnvelopeMeta:
    client_id: int
    client_name: str
    sha256: str
    message_id: str | None
    source: str
    received_at: datetime
    chunk_count: int = 1
    sealing: str | None = None  # the header's ephemeral key, hex
    chunk_digests: list[str] | None = None  # sha256 (hex) of each chunk, in index order


@dataclass(frozen=True)
class LoadedEnvelope:
    """What ingest needs to know of the envelope already loaded under a (client, seq)."""

    sha256: str
    sealing: str | None
    created_at: datetime
    chunk_digests: list[str] | None = None


def _latest(a: datetime, b: datetime) -> datetime:
    return a if a >= b else b


class Loader:
    """The write side of ingest, on one open database."""

    def __init__(
        self,
        db: Database,
        *,
        policy: CounterPolicy | None = None,
        now: Callable[[], datetime] | None = None,
        orders: OrdersSection | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or CounterPolicy()
        self.orders = orders or OrdersSection()  # the supply-order defaults ([orders])
        self.now = now or (lambda: datetime.now(UTC))  # dates what is written (ingested, quarantined)
        self._sites: dict[tuple[int, str], int] = {}

    # -- reads used before the expensive work ----------------------------------------------------

    def loaded(self, client_id: int, seq: int) -> LoadedEnvelope | None:
        """The envelope loaded as (client, seq), or None when there is none."""
        with translated("cannot look up an envelope"):
            row = (
                Envelope.select(
                    Envelope.sha256, Envelope.sealing, Envelope.created_at, Envelope.chunk_digests
                )
                .where(Envelope.client == client_id, Envelope.seq == seq)
                .first()
            )
            return LoadedEnvelope(row.sha256, row.sealing, row.created_at, row.chunk_digests) if row else None

    def last_seq(self, client_id: int) -> int:
        """The highest number loaded for the client (0 when none)."""
        with translated("cannot look up an envelope"):
            last = Envelope.select(peewee.fn.MAX(Envelope.seq)).where(Envelope.client == client_id).scalar()
            return int(last or 0)

    # -- chunks ------------------------------------------------------------------------------------

    def store_chunk(
        self, meta: EnvelopeMeta, *, seq: int, index: int, count: int, data: bytes
    ) -> list[bytes] | None:
        """Keep one chunk; when it completes its set, return every chunk's bytes (still stored).

        ChunkError ("bad_chunk") when a different chunk is stored at this position already: an
        identical copy is a harmless resend, a different one is altered or belongs to another set.
        """
        with translated("cannot store a chunk"), self.db.atomic():
            if self.db.kind == "postgresql":
                # Two loaders storing the last two chunks at once must not both see an incomplete set.
                self.db.peewee.execute_sql(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (meta.client_id, seq % 2**31)
                )
            held = (
                PendingChunk.select(PendingChunk.data, PendingChunk.chunk_count)
                .where(
                    PendingChunk.client == meta.client_id,
                    PendingChunk.seq == seq,
                    PendingChunk.chunk_index == index,
                )
                .first()
            )
            if held is not None and bytes(held.data) != data:
                raise ChunkError(
                    f"chunk {index}/{count} of {meta.client_name} #{seq} differs from the chunk "
                    f"{index}/{held.chunk_count} stored already: one of them was altered in transit, "
                    f"or two different sealings of #{seq} were sent",
                    hint="the stored chunk is kept and the report loads when its other chunks arrive; "
                    "this copy stays in quarantine",
                )
            PendingChunk.insert(
                client=meta.client_id,
                seq=seq,
                chunk_index=index,
                chunk_count=count,
                data=data,
                message_id=storable(meta.message_id),
                source=storable(meta.source),
                received_at=meta.received_at,
            ).on_conflict_ignore().execute()
            rows = list(
                PendingChunk.select(PendingChunk.chunk_index, PendingChunk.chunk_count).where(
                    PendingChunk.client == meta.client_id, PendingChunk.seq == seq
                )
            )
            have = {r.chunk_index for r in rows if r.chunk_count == count}
            if len(have) < count:
                return None
            return [
                bytes(r.data)
                for r in PendingChunk.select(PendingChunk.data)
                .where(
                    PendingChunk.client == meta.client_id,
                    PendingChunk.seq == seq,
                    PendingChunk.chunk_count == count,
                )
                .order_by(PendingChunk.chunk_index)
            ]

    def drop_chunks(self, client_id: int, seq: int) -> None:
        with translated("cannot delete chunks"):
            PendingChunk.delete().where(PendingChunk.client == client_id, PendingChunk.seq == seq).execute()

    # -- quarantine ----------------------------------------------------------------------------------

    def quarantine(
        self,
        *,
        sha256: str,
        reason: str,
        detail: str,
        hint: str,
        raw: bytes,
        raw_size: int,
        source: str,
        message_id: str | None,
        client_name: str | None,
        seq: int | None,
        received_at: datetime,
        drop_chunks_of: tuple[int, int] | None = None,
    ) -> tuple[int, bool]:
        """Keep a message with why; returns (quarantine id, whether these bytes were held already)."""
        now = self.now()
        with translated("cannot quarantine a message"), self.db.atomic():
            if drop_chunks_of is not None:
                self.drop_chunks(*drop_chunks_of)
            existing = Quarantine.get_or_none(Quarantine.sha256 == sha256)
            if existing is not None:
                detail, hint = storable(detail) or "", storable(hint) or ""
                if existing.status == "held" and (existing.reason, existing.detail) != (reason, detail):
                    existing.reason, existing.detail, existing.hint = reason, detail, hint
                    existing.save()
                return existing.id, True
            q = (
                Quarantine.insert(
                    sha256=sha256,
                    reason=reason,
                    detail=storable(detail),
                    hint=storable(hint),
                    raw=raw,
                    raw_size=raw_size,
                    source=storable(source),
                    message_id=storable(message_id),
                    client_name=client_name,
                    seq=seq if seq is None or 0 <= seq <= MAX_SEQ else None,
                    received_at=received_at,
                    quarantined_at=now,
                )
                .on_conflict_ignore()
                .execute()
            )
            if not q:  # another loader kept the same bytes a moment ago
                return Quarantine.get(Quarantine.sha256 == sha256).id, True
            return int(q), False

    def release(self, quarantine_id: int) -> None:
        with translated("cannot update the quarantine"):
            Quarantine.update(status="released", released_at=self.now()).where(
                Quarantine.id == quarantine_id
            ).execute()

    def dismiss(self, quarantine_ids: Sequence[int]) -> list[int]:
        """Set held entries aside (their bytes stay, `retry` still works); returns those dismissed."""
        with translated("cannot update the quarantine"), self.db.atomic():
            held = [
                q.id
                for q in Quarantine.select(Quarantine.id).where(
                    Quarantine.id.in_(list(quarantine_ids)), Quarantine.status == "held"
                )
            ]
            Quarantine.update(status="dismissed", released_at=self.now()).where(
                Quarantine.id.in_(held)
            ).execute()
        return held

    # -- the report ---------------------------------------------------------------------------------

    def load(self, report: Report, meta: EnvelopeMeta) -> Loaded:
        """Write ``report`` and everything in it; DuplicateKey when (client, seq) is loaded already,
        DataRefused when the database refuses one of its values (nothing of it is written)."""
        what = f"cannot load report {meta.client_name} #{report.seq}"
        try:
            with translated(what), self.db.atomic():
                try:
                    return self._load(report, meta)
                except peewee.IntegrityError as exc:  # not the envelope's UNIQUE: that is DuplicateKey
                    raise DataRefused(
                        f"{what}: the database refused a row: {exc}",
                        hint="a report passed fsm's checks but not the database's: a bug in fsm; report it",
                    ) from exc
        except BaseException:
            self._sites.clear()  # the rollback took back any customer and site made for this report
            raise

    def _load(self, report: Report, meta: EnvelopeMeta) -> Loaded:
        now = self.now()
        readings = report.devices
        idents = [
            device_identity(
                client=meta.client_name, manufacturer=d.manufacturer, serial=d.serial, mac=d.mac, ip=d.ip
            )
            for d in readings
        ]
        newest: dict[str, DeviceReading] = {}
        first: dict[str, datetime] = {}
        for d, (ident, _) in zip(readings, idents, strict=True):
            cur = newest.get(ident)
            if cur is None or d.observed_at >= cur.observed_at:
                newest[ident] = d  # the newest reading decides the device's current ip/model/...
            first[ident] = min(first.get(ident, d.observed_at), d.observed_at)
        values = sum(len(d.counters) + len(d.supplies) + len(d.alerts) for d in readings)
        # The envelope row first: UNIQUE(client, seq) refuses a second load here, and the whole
        # transaction rolls back (on PostgreSQL a concurrent loader waits for ours to finish).
        try:
            envelope_id = Envelope.insert(
                client=meta.client_id,
                seq=report.seq,
                kind=report.kind,
                message_id=storable(meta.message_id),
                sha256=meta.sha256,
                sealing=meta.sealing,
                chunk_count=meta.chunk_count,
                chunk_digests=meta.chunk_digests,
                source=storable(meta.source),
                created_at=report.created_at,
                received_at=meta.received_at,
                ingested_at=now,
                resend_of=report.resend_of,
                pmd_bundle=report.pmd_bundle,
                devices=len(newest),
                values=values,
            ).execute()
        except peewee.IntegrityError as exc:
            raise DuplicateKey(f"report {meta.client_name} #{report.seq} is loaded already") from exc
        if meta.chunk_count > 1:
            self.drop_chunks(meta.client_id, report.seq)
        customer_id, claimed = report_customer(meta.client_id, report.customer)
        if claimed is not None:
            Envelope.update(claimed_customer=claimed).where(Envelope.id == envelope_id).execute()
        site_id = None if not report.customer and not report.site else self._site(customer_id, report.site)
        if not readings:
            return Loaded(envelope_id=int(envelope_id), devices=0, values=0, claimed_customer=claimed)
        device_ids = self._upsert_devices(newest, first, customer_id, meta.client_id, site_id)

        # Address history.
        addresses: dict[tuple[int, str, str], tuple[datetime, datetime]] = {}
        for d, (ident, _) in zip(readings, idents, strict=True):
            key = (device_ids[ident], d.ip, (d.mac or "").lower())
            lo, hi = addresses.get(key, (d.observed_at, d.observed_at))
            addresses[key] = (min(lo, d.observed_at), max(hi, d.observed_at))
        least, greatest = ("MIN", "MAX") if self.db.kind == "sqlite" else ("LEAST", "GREATEST")
        self._executemany(
            "device_address",
            ("device_id", "ip", "mac", "first_seen", "last_seen"),
            [(k[0], k[1], k[2], self._ts(v[0]), self._ts(v[1])) for k, v in addresses.items()],
            "ON CONFLICT (device_id, ip, mac) DO UPDATE SET "
            f"first_seen = {least}(device_address.first_seen, excluded.first_seen), "
            f"last_seen = {greatest}(device_address.last_seen, excluded.last_seen)",
        )

        # Readings, ids back in order, each with the map of where its values were read.
        source_ids = self._source_ids(readings)
        reading_ids: list[int] = [
            r[0]
            for r in self._insert_returning(
                "reading",
                (
                    "envelope_id",
                    "device_id",
                    "observed_at",
                    "ip",
                    "reachability",
                    "device_status",
                    "printer_status",
                    "conditions",
                    "console",
                    "uptime_ticks",
                    "warnings",
                    "source_id",
                ),
                [
                    (
                        envelope_id,
                        device_ids[ident],
                        self._ts(d.observed_at),
                        d.ip,
                        d.reachability,
                        d.status.device,
                        d.status.printer,
                        _json(d.status.conditions),
                        d.status.console,
                        d.uptime_ticks,
                        _json(d.warnings),
                        source,
                    )
                    for d, (ident, _), source in zip(readings, idents, source_ids, strict=True)
                ],
                "id",
            )
        ]

        _, flagged = self._counters(readings, idents, device_ids, reading_ids)
        supply_rows = [
            (rid, s.index, s.description, s.kind, s.color, s.level, s.max, s.unit, s.percent, s.state)
            for d, rid in zip(readings, reading_ids, strict=True)
            for s in d.supplies
        ]
        self._executemany(
            "supply_value",
            (
                "reading_id",
                "index",
                "description",
                "kind",
                "color",
                "level",
                "max",
                "unit",
                "percent",
                "state",
            ),
            supply_rows,
        )
        alert_rows = [
            (
                rid,
                device_ids[ident],
                a.code,
                a.severity,
                a.group,
                a.group_index,
                a.location,
                a.description,
                a.index,
                a.training,
                a.time_ticks,
                self._ts(d.observed_at),
            )
            for d, (ident, _), rid in zip(readings, idents, reading_ids, strict=True)
            for a in d.alerts
        ]
        self._executemany(
            "alert_value",
            (
                "reading_id",
                "device_id",
                "code",
                "severity",
                "group",
                "group_index",
                "location",
                "description",
                "index",
                "training",
                "time_ticks",
                "observed_at",
            ),
            alert_rows,
        )
        pairs = list(zip(readings, idents, reading_ids, strict=True))
        state.after_load(
            self.db,
            [
                state.Newest(
                    device_ids[ident],
                    rid,
                    d.observed_at,
                    d.reachability,
                    d.status.device,
                    d.status.printer,
                    d.status.conditions or None,
                    [(a.code, a.severity) for a in d.alerts],
                )
                for d, (ident, _), rid in pairs
            ],
            [
                state.Level(
                    device_ids[ident],
                    rid,
                    d.observed_at,
                    state.supply_key(s.kind, s.color, s.index, s.description),
                    s.description,
                    s.kind,
                    s.color,
                    s.percent,
                    s.state,
                )
                for d, (ident, _), rid in pairs
                for s in d.supplies
            ],
        )
        # order proposals follow the supply state just written (fsm_server.orders)
        proposals.after_state(self.db, device_ids.values(), self.orders, now=now)
        return Loaded(
            envelope_id=int(envelope_id),
            devices=len(newest),
            values=values,
            flagged=flagged,
            claimed_customer=claimed,
        )

    def _counters(
        self,
        readings: list[DeviceReading],
        idents: list[tuple[str, bool]],
        device_ids: dict[str, int],
        reading_ids: list[int],
    ) -> tuple[int, list[tuple[str, str, str]]]:
        ids = sorted(set(device_ids.values()))
        latest: dict[tuple[int, str], tuple[int, datetime]] = {}
        ph = self.db.peewee.param
        for part in range(0, len(ids), _BATCH):
            batch = ids[part : part + _BATCH]
            cursor = self.db.peewee.execute_sql(
                "SELECT device_id, name, value, observed_at FROM counter_latest "
                f"WHERE device_id IN ({', '.join([ph] * len(batch))})",
                batch,
            )
            for dev, name, value, observed in cursor.fetchall():
                if isinstance(observed, str):
                    observed = datetime.fromisoformat(observed)
                latest[(dev, name)] = (value, observed.replace(tzinfo=UTC))
        changed: dict[tuple[int, str], tuple[int, datetime]] = {}
        rows: list[tuple[object, ...]] = []
        flagged: list[tuple[str, str, str]] = []
        order = sorted(range(len(readings)), key=lambda i: readings[i].observed_at)
        for i in order:
            d, (ident, strong) = readings[i], idents[i]
            dev = device_ids[ident]
            ts = self._ts(d.observed_at)
            for name, value in d.counters.items():
                prev = latest.get((dev, name))
                flag = None
                if prev is not None and d.observed_at > prev[1]:
                    flag = self.policy.flag(prev[0], value, d.observed_at - prev[1], strong_identity=strong)
                if flag:
                    flagged.append((ident, name, flag))
                late = prev is not None and d.observed_at < prev[1]
                rows.append(
                    (reading_ids[i], dev, name, value, ts, flag, prev[0] if flag and prev else None, late)
                )
                if prev is None or d.observed_at > prev[1]:
                    latest[(dev, name)] = changed[(dev, name)] = (value, d.observed_at)
        self._executemany(
            "counter_value",
            ("reading_id", "device_id", "name", "value", "observed_at", "flag", "previous", "late"),
            rows,
        )
        self._executemany(
            "counter_latest",
            ("device_id", "name", "value", "observed_at"),
            [(k[0], k[1], v[0], self._ts(v[1])) for k, v in changed.items()],
            "ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value, "
            "observed_at = excluded.observed_at WHERE excluded.observed_at > counter_latest.observed_at",
        )
        return len(rows), flagged

    def _upsert_devices(
        self,
        newest: dict[str, DeviceReading],
        first: dict[str, datetime],
        customer_id: int,
        client_id: int,
        site_id: int | None,
    ) -> dict[str, int]:
        """The device ids of the identities, within the client's customer: another customer's
        device with the same identity is never matched (fsm_server.tenancy)."""
        cols = (
            "identity",
            "customer_id",
            "client_id",
            "site_id",
            "manufacturer",
            "model",
            "serial",
            "firmware",
            "hostname",
            "location",
            "pmd",
            "ip",
            "mac",
            "first_seen",
            "last_seen",
        )
        rows = [
            (
                ident,
                customer_id,
                client_id,
                site_id,
                d.manufacturer,
                d.model,
                d.serial,
                d.firmware,
                d.hostname,
                d.location,
                d.pmd,
                d.ip,
                d.mac,
                self._ts(first[ident]),
                self._ts(d.observed_at),
            )
            for ident, d in newest.items()
        ]
        newer = "excluded.last_seen >= device.last_seen"
        sets = [
            f'"{c}" = CASE WHEN {newer} THEN excluded."{c}" ELSE device."{c}" END'
            for c in cols[2:]
            if c != "first_seen"
        ]
        sets.append(
            "first_seen = CASE WHEN excluded.first_seen < device.first_seen "
            "THEN excluded.first_seen ELSE device.first_seen END"
        )
        conflict = "ON CONFLICT (customer_id, identity) DO UPDATE SET " + ", ".join(sets)
        returned = self._insert_returning("device", cols, rows, "id, identity", conflict)
        return {ident: pk for pk, ident in returned}

    # -- raw bulk SQL: peewee builds a multi-row INSERT at ~10 µs per value, the driver at ~0.1 -----

    def _ts(self, when: datetime) -> object:
        naive = when.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ") if self.db.kind == "sqlite" else naive

    def _executemany(
        self, table: str, cols: tuple[str, ...], rows: Sequence[tuple[object, ...]], conflict: str = ""
    ) -> None:
        if not rows:
            return
        ph = self.db.peewee.param
        sql = (
            f'INSERT INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)}) '
            f"VALUES ({', '.join([ph] * len(cols))}) {conflict}"
        )
        with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            self.db.peewee.cursor().executemany(sql, rows)

    def _insert_returning(
        self,
        table: str,
        cols: tuple[str, ...],
        rows: Sequence[tuple[object, ...]],
        returning: str,
        conflict: str = "",
    ) -> list[tuple[Any, ...]]:
        """The ``returning`` columns of the rows inserted, as the driver gives them."""
        out: list[tuple[Any, ...]] = []
        ph = "(" + ", ".join([self.db.peewee.param] * len(cols)) + ")"
        names = ", ".join(f'"{c}"' for c in cols)
        for part in range(0, len(rows), _BATCH):
            batch = rows[part : part + _BATCH]
            sql = (
                f'INSERT INTO "{table}" ({names}) VALUES {", ".join([ph] * len(batch))} {conflict} '
                f"RETURNING {returning}"
            )
            params = [v for row in batch for v in row]
            out.extend(self.db.peewee.execute_sql(sql, params).fetchall())
        return out

    def _source_ids(self, readings: Sequence[DeviceReading]) -> list[int | None]:
        """The reading_source id of each reading's (PMD, field -> OID) map, stored when new: two
        statements per report, whatever its size (a fleet of one model shares one map)."""
        digests: list[str | None] = []
        new: dict[str, tuple[object, ...]] = {}
        for d in readings:
            if not d.sources and d.pmd is None:
                digests.append(None)
                continue
            body = msgspec.json.encode({"pmd": d.pmd, "sources": dict(sorted(d.sources.items()))})
            digest = hashlib.sha256(body).hexdigest()
            digests.append(digest)
            new.setdefault(digest, (digest, d.pmd, _json_map(d.sources)))
        if not new:
            return [None] * len(readings)
        self._executemany(
            "reading_source",
            ("digest", "pmd", "sources"),
            list(new.values()),
            "ON CONFLICT (digest) DO NOTHING",
        )
        where, params = sql.in_list(self.db, "digest", list(new))
        ids = dict(
            self.db.peewee.execute_sql(
                f"SELECT digest, id FROM reading_source WHERE {where}", params
            ).fetchall()
        )
        return [None if digest is None else int(ids[digest]) for digest in digests]

    def _site(self, customer_id: int, site: str) -> int:
        key = (customer_id, site)
        if key not in self._sites:
            Site.insert(customer=customer_id, name=site).on_conflict_ignore().execute()
            self._sites[key] = Site.get(Site.customer == customer_id, Site.name == site).id
        return self._sites[key]


def storable(text: str | None) -> str | None:
    """``text`` as every database stores it: no NUL (PostgreSQL refuses it in text) and no lone
    surrogate (a non-UTF-8 file name decoded with surrogateescape cannot be encoded back)."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _json_map(value: dict[str, str]) -> str:
    return msgspec.json.encode(dict(sorted(value.items()))).decode()


def _json(value: list[str]) -> str | None:
    return msgspec.json.encode(value).decode() if value else None


__all__ = ["CounterPolicy", "EnvelopeMeta", "Loaded", "LoadedEnvelope", "Loader", "storable"]

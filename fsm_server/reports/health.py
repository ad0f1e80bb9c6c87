"""The health report: silent clients and devices, sequence gaps, quarantine, counter anomalies,
ingest latency, identities held under more than one customer."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import datetime, timedelta

import msgspec
from peewee import fn

from .. import listings
from ..backup.schedule import BackupStatus
from ..backup.schedule import status as backup_status
from ..config import ReportsSection
from ..db import sql
from ..db.connect import translated
from ..db.models import Client, Device, Envelope
from .scope import DeviceInfo, Scope, bound_database, chunks, device_sort_key, devices_in_scope


class ClientHealth(msgspec.Struct, kw_only=True):
    client: str
    status: str
    last_report_at: datetime | None
    last_ingested_at: datetime | None
    reports_in_period: int
    expected_hours: float
    silent: bool


class SilentDevice(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    last_seen: datetime
    silent_hours: float
    expected_hours: float


class Anomaly(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    counter: str
    flag: str  # reset | wrap | jump | device_swap
    previous: int | None
    value: int
    observed_at: datetime


class Latency(msgspec.Struct, kw_only=True):
    """observed-at -> ingested-at, in seconds, of the readings ingested in the period."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    by_kind: dict[str, float] = msgspec.field(default_factory=dict)  # report kind -> median


class GapRow(msgspec.Struct, kw_only=True):
    client: str
    first: int
    last: int
    count: int
    kind: str


class IdentityCollision(msgspec.Struct, kw_only=True):
    """One device identity (a maker + serial) held by devices of more than one customer: the
    same printer claimed by two customers' clients, or a serial that is not unique."""

    identity: str
    manufacturer: str | None
    serial: str | None
    customers: int  # how many customers hold it
    devices: list[DeviceInfo]  # those in the report's scope


class Health(msgspec.Struct, kw_only=True, tag="health", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    clients: list[ClientHealth]
    silent_devices: list[SilentDevice]
    gaps: list[GapRow]
    quarantine: dict[str, int]
    anomalies: list[Anomaly]
    latency: Latency
    collisions: list[IdentityCollision] = msgspec.field(default_factory=list)
    backup: BackupStatus | None = None  # the dealer's whole database: not in a customer's report


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def expected_hours(created: list[datetime], default: float) -> float:
    """A client's report interval: the median gap of its last periodic reports, else ``default``."""
    if len(created) < 3:
        return default
    gaps = [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(created)]
    gaps = [g for g in gaps if g > 0]
    return statistics.median(gaps) if gaps else default


def client_health(scope: Scope, settings: ReportsSection, infos: dict[int, DeviceInfo]) -> list[ClientHealth]:
    names = {d.client for d in infos.values()} if scope.customer is not None else None
    db = bound_database()
    counts = dict(sql.rows(db, ENVELOPE_COUNTS_SQL, [sql.ts(db, scope.start), sql.ts(db, scope.end)]))
    out = []
    for c in Client.select().order_by(Client.name):
        if names is not None and c.name not in names:
            continue
        recent = list(
            Envelope.select(Envelope.created_at)
            .where(
                Envelope.client == c.id,
                Envelope.kind.in_(("periodic", "inventory")),
                Envelope.created_at < scope.end,
            )
            .order_by(Envelope.created_at.desc())
            .limit(11)
        )
        last = (
            Envelope.select(Envelope.created_at, Envelope.ingested_at)
            .where(Envelope.client == c.id, Envelope.created_at < scope.end)
            .order_by(Envelope.created_at.desc())
            .first()
        )
        hours = expected_hours(sorted(e.created_at for e in recent), settings.expected_report_hours)
        reference = last.created_at if last else c.added_at
        silent = c.status == "active" and (
            scope.end - reference > timedelta(hours=hours + settings.silence_grace_hours)
        )
        out.append(
            ClientHealth(
                client=c.name,
                status=c.status,
                last_report_at=last.created_at if last else None,
                last_ingested_at=last.ingested_at if last else None,
                reports_in_period=counts.get(c.id, 0),
                expected_hours=hours,
                silent=silent,
            )
        )
    return out


#: Reports ingested in the period per client: a range of the envelope (ingested_at) index.
ENVELOPE_COUNTS_SQL = """
SELECT client_id, COUNT(*) FROM envelope WHERE ingested_at >= ? AND ingested_at < ? GROUP BY client_id
"""

#: Counter values ingest flagged in the period, newest first: a range of the partial index over
#: flagged values only (migration m010), which stays small however many readings there are.
ANOMALIES_SQL = """
SELECT device_id, name, flag, previous, value, observed_at FROM counter_value
WHERE flag IS NOT NULL AND observed_at >= ? AND observed_at < ?
ORDER BY observed_at DESC
"""

#: The newest ``limit`` readings ingested in the period with their envelope: the envelope
#: (ingested_at) index backwards, each envelope's readings by its id.
LATENCY_SQL = """
SELECT r.device_id, r.observed_at, e.ingested_at, e.kind
FROM envelope e CROSS JOIN reading r
WHERE e.ingested_at >= ? AND e.ingested_at < ? AND r.envelope_id = e.id
ORDER BY e.ingested_at DESC
LIMIT ?
"""


def silent_devices(
    scope: Scope, settings: ReportsSection, infos: dict[int, DeviceInfo], clients: list[ClientHealth]
) -> list[SilentDevice]:
    expected = {c.client: c.expected_hours for c in clients}
    db = bound_database()
    out = []
    for part in chunks(infos, 1000):
        where, params = sql.in_list(db, "id", part)
        for dev, last in sql.rows(db, f"SELECT id, last_seen FROM device WHERE {where}", params):
            info, last_seen = infos[dev], sql.utc(last)
            hours = expected.get(info.client, settings.expected_report_hours)
            quiet = scope.end - last_seen
            if quiet > timedelta(hours=hours + settings.silence_grace_hours):
                out.append(
                    SilentDevice(
                        device=info,
                        last_seen=last_seen,
                        expected_hours=hours,
                        silent_hours=quiet.total_seconds() / 3600,
                    )
                )
    return sorted(out, key=lambda s: s.last_seen)


def anomalies(scope: Scope, infos: dict[int, DeviceInfo]) -> list[Anomaly]:
    db = bound_database()
    return [
        Anomaly(
            device=infos[dev],
            counter=name,
            flag=flag,
            previous=previous,
            value=value,
            observed_at=sql.utc(at),
        )
        for dev, name, flag, previous, value, at in sql.rows(
            db, ANOMALIES_SQL, [sql.ts(db, scope.start), sql.ts(db, scope.end)]
        )
        if dev in infos
    ]


def latency(scope: Scope, infos: dict[int, DeviceInfo], *, limit: int = 200_000) -> Latency:
    samples: list[float] = []
    kinds: dict[str, list[float]] = defaultdict(list)
    db = bound_database()
    for dev, observed, ingested, kind in sql.rows(
        db, LATENCY_SQL, [sql.ts(db, scope.start), sql.ts(db, scope.end), limit]
    ):
        if dev not in infos:
            continue
        seconds = (sql.utc(ingested) - sql.utc(observed)).total_seconds()
        samples.append(seconds)
        kinds[kind].append(seconds)
    if not samples:
        return Latency()
    samples.sort()
    return Latency(
        count=len(samples),
        p50=_percentile(samples, 50),
        p90=_percentile(samples, 90),
        p99=_percentile(samples, 99),
        max=samples[-1],
        by_kind={k: statistics.median(v) for k, v in sorted(kinds.items())},
    )


def collisions(infos: dict[int, DeviceInfo]) -> list[IdentityCollision]:
    """Serial identities held under more than one customer, with the devices of them in scope.
    (Weak identities name their client, so they cannot collide across customers.)"""
    shared = (
        Device.select(Device.identity)
        .where(Device.identity.startswith("sn:"))
        .group_by(Device.identity)
        .having(fn.COUNT(Device.customer.distinct()) > 1)
    )
    held: dict[str, set[int]] = defaultdict(set)
    mine: dict[str, list[DeviceInfo]] = defaultdict(list)
    for d in Device.select(Device.id, Device.identity, Device.customer).where(Device.identity.in_(shared)):
        held[d.identity].add(d.customer_id)
        if d.id in infos:
            mine[d.identity].append(infos[d.id])
    out = [
        IdentityCollision(
            identity=ident,
            manufacturer=devs[0].manufacturer,
            serial=devs[0].serial,
            customers=len(held[ident]),
            devices=sorted(devs, key=device_sort_key),
        )
        for ident, devs in mine.items()
    ]
    return sorted(out, key=lambda c: c.identity)


def health(scope: Scope, settings: ReportsSection | None = None) -> Health:
    """Silent clients and devices, sequence gaps, quarantine, counter anomalies, ingest latency,
    identities held under more than one customer."""
    cfg = settings or ReportsSection()
    with translated("cannot build the health report"):
        infos = devices_in_scope(scope.customer)
        clients = client_health(scope, cfg, infos)
        names = {c.client for c in clients}
        gaps = [
            GapRow(client=g.client, first=g.first, last=g.last, count=g.count, kind=g.kind)
            for g in listings.gaps()
            if g.client in names
        ]
        return Health(
            generated_at=scope.now,
            customer=scope.customer,
            start=scope.start,
            end=scope.end,
            clients=clients,
            silent_devices=silent_devices(scope, cfg, infos, clients),
            gaps=gaps,
            quarantine=listings.quarantine_counts(),
            anomalies=anomalies(scope, infos),
            latency=latency(scope, infos),
            collisions=collisions(infos),
            backup=None if scope.customer else backup_status(None, now=scope.now),
        )


__all__ = [
    "ANOMALIES_SQL",
    "ENVELOPE_COUNTS_SQL",
    "LATENCY_SQL",
    "Anomaly",
    "ClientHealth",
    "GapRow",
    "Health",
    "IdentityCollision",
    "Latency",
    "SilentDevice",
    "anomalies",
    "client_health",
    "collisions",
    "expected_hours",
    "health",
    "latency",
    "silent_devices",
]

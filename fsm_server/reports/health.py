"""The health report: silent clients and devices, sequence gaps, quarantine, counter anomalies,
ingest latency, identities held under more than one customer, reports naming another customer."""

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
from ..db.connect import Database, translated
from ..db.models import Device
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


class CustomerClaim(msgspec.Struct, kw_only=True):
    """Reports of one client that named another customer than the one it is enrolled under: loaded
    under its own customer (fsm_server.tenancy), flagged here. The client's configuration names the
    wrong customer, or the client reads printers that are not its customer's."""

    client: str
    customer: str  # the one it is enrolled under, which the readings went to
    claimed: str  # the one its reports named
    reports: int  # in the period
    first_seq: int
    last_seq: int
    last_at: datetime  # the newest one's creation time


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
    claims: list[CustomerClaim] = msgspec.field(default_factory=list)
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
    names = {d.client for d in infos.values()} if scope.customer is not None or scope.dealer else None
    db = bound_database()
    start, end = sql.ts(db, scope.start), sql.ts(db, scope.end)
    counts = dict(sql.rows(db, ENVELOPE_COUNTS_SQL, [start, end]))
    recent: dict[int, list[datetime]] = defaultdict(list)
    for client, created in sql.rows(db, *recent_query(db, scope.end)):
        recent[client].append(sql.utc(created))
    out = []
    for cid, name, status, added_at, last_created, last_ingested in sql.rows(db, CLIENTS_SQL, [end, end]):
        if names is not None and name not in names:
            continue
        last_at = None if last_created is None else sql.utc(last_created)
        # the newest RECENT_REPORTS (more when several share the oldest moment, as a LIMIT's pick)
        created = sorted(recent.get(cid, []))[-RECENT_REPORTS:]
        hours = expected_hours(created, settings.expected_report_hours)
        reference = last_at or sql.utc(added_at)
        silent = status == "active" and (
            scope.end - reference > timedelta(hours=hours + settings.silence_grace_hours)
        )
        out.append(
            ClientHealth(
                client=name,
                status=status,
                last_report_at=last_at,
                last_ingested_at=None if last_ingested is None else sql.utc(last_ingested),
                reports_in_period=counts.get(cid, 0),
                expected_hours=hours,
                silent=silent,
            )
        )
    return out


#: How many of a client's newest periodic reports give its report interval (``expected_hours``).
RECENT_REPORTS = 11

#: Every client with its newest report before the period end (created and ingested): two seeks of
#: the envelope (client, created_at) index per client, in one query.
CLIENTS_SQL = """
SELECT c.id, c.name, c.status, c.added_at,
       (SELECT e.created_at FROM envelope e WHERE e.client_id = c.id AND e.created_at < ?
        ORDER BY e.created_at DESC LIMIT 1),
       (SELECT e.ingested_at FROM envelope e WHERE e.client_id = c.id AND e.created_at < ?
        ORDER BY e.created_at DESC LIMIT 1)
FROM client c ORDER BY c.name
"""

#: The creation times of each client's newest periodic and inventory reports before the period
#: end, by database: a walk back along the envelope (client, created_at) index per client, on
#: PostgreSQL LATERAL with a LIMIT; SQLite (no LATERAL) ranges from the RECENT_REPORTS-th newest on.
RECENT_SQL = {
    "postgresql": f"""
SELECT c.id, e.created_at FROM client c CROSS JOIN LATERAL (
    SELECT x.created_at FROM envelope x
    WHERE x.client_id = c.id AND x.kind IN ('periodic', 'inventory') AND x.created_at < ?
    ORDER BY x.created_at DESC LIMIT {RECENT_REPORTS}) e
""",
    "sqlite": f"""
SELECT e.client_id, e.created_at
FROM (SELECT c.id AS id, COALESCE(
          (SELECT x.created_at FROM envelope x
           WHERE x.client_id = c.id AND x.kind IN ('periodic', 'inventory') AND x.created_at < ?
           ORDER BY x.created_at DESC LIMIT 1 OFFSET {RECENT_REPORTS - 1}), '') AS since
      FROM client c) b
CROSS JOIN envelope e
WHERE e.client_id = b.id AND e.created_at >= b.since AND e.created_at < ?
  AND e.kind IN ('periodic', 'inventory')
""",
}


def recent_query(db: Database, end: datetime) -> tuple[str, list[object]]:
    """RECENT_SQL of the database, with its parameters."""
    until = sql.ts(db, end)
    return RECENT_SQL[db.kind], [until, until] if db.kind == "sqlite" else [until]


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
SELECT r.device_id, {seconds}, e.kind
FROM envelope e CROSS JOIN reading r
WHERE e.ingested_at >= ? AND e.ingested_at < ? AND r.envelope_id = e.id
ORDER BY e.ingested_at DESC
LIMIT ?
"""


#: Reports ingested in the period that named another customer than their client's: a range of the
#: partial index over those reports only (migration m024), folded per client here, not by a sort.
CLAIMS_SQL = """
SELECT client_id, claimed_customer, seq, created_at FROM envelope
WHERE claimed_customer IS NOT NULL AND ingested_at >= ? AND ingested_at < ?
"""

#: The names of some clients and of the customers they are enrolled under.
CLIENT_NAMES_SQL = """
SELECT c.id, c.name, cu.name FROM client c LEFT JOIN customer cu ON cu.id = c.customer_id WHERE {where}
"""


def customer_claims(scope: Scope, clients: set[str] | None = None) -> list[CustomerClaim]:
    """The reports in the period that named another customer, per client (of ``clients`` only,
    when given) and customer named."""
    db = bound_database()
    folded: dict[tuple[int, str], list[tuple[int, datetime]]] = defaultdict(list)
    for client_id, claimed, seq, at in sql.rows(
        db, CLAIMS_SQL, [sql.ts(db, scope.start), sql.ts(db, scope.end)]
    ):
        folded[(client_id, claimed)].append((seq, sql.utc(at)))
    if not folded:
        return []
    where, params = sql.in_list(db, "c.id", sorted({c for c, _ in folded}))
    names = {
        cid: (name, customer or "")
        for cid, name, customer in db.peewee.execute_sql(CLIENT_NAMES_SQL.format(where=where), params)
    }
    out = [
        CustomerClaim(
            client=names[client_id][0],
            customer=names[client_id][1],
            claimed=claimed,
            reports=len(rows),
            first_seq=min(seq for seq, _ in rows),
            last_seq=max(seq for seq, _ in rows),
            last_at=max(at for _, at in rows),
        )
        for (client_id, claimed), rows in folded.items()
        if clients is None or names[client_id][0] in clients
    ]
    return sorted(out, key=lambda c: (c.client, c.claimed))


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


def latency_query(db: Database, start: datetime, end: datetime, limit: int) -> tuple[str, list[object]]:
    """LATENCY_SQL with each reading's seconds from observed to ingested computed by the database
    (two datetimes per row made in Python cost more than the rest of the report)."""
    seconds = sql.seconds_between(db, "e.ingested_at", "r.observed_at")
    return LATENCY_SQL.format(seconds=seconds), [sql.ts(db, start), sql.ts(db, end), limit]


def latency(scope: Scope, infos: dict[int, DeviceInfo], *, limit: int = 200_000) -> Latency:
    samples: list[float] = []
    kinds: dict[str, list[float]] = defaultdict(list)
    db = bound_database()
    q, params = latency_query(db, scope.start, scope.end, limit)
    for dev, seconds, kind in sql.rows(db, q, params):
        if dev in infos:
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
    identities held under more than one customer, reports naming another customer."""
    cfg = settings or ReportsSection()
    with translated("cannot build the health report"):
        infos = devices_in_scope(scope.customer, dealer=scope.dealer)
        clients = client_health(scope, cfg, infos)
        names = {c.client for c in clients}
        unscoped = not (scope.customer or scope.dealer)
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
            # a customer's or dealer's report counts only what names its own clients
            quarantine=listings.quarantine_counts(None if unscoped else names),
            anomalies=anomalies(scope, infos),
            latency=latency(scope, infos),
            collisions=collisions(infos),
            claims=customer_claims(scope, names),
            backup=backup_status(None, now=scope.now) if unscoped else None,
        )


__all__ = [
    "ANOMALIES_SQL",
    "CLAIMS_SQL",
    "CLIENTS_SQL",
    "CLIENT_NAMES_SQL",
    "ENVELOPE_COUNTS_SQL",
    "LATENCY_SQL",
    "RECENT_REPORTS",
    "RECENT_SQL",
    "Anomaly",
    "ClientHealth",
    "CustomerClaim",
    "GapRow",
    "Health",
    "IdentityCollision",
    "Latency",
    "SilentDevice",
    "anomalies",
    "client_health",
    "collisions",
    "customer_claims",
    "expected_hours",
    "health",
    "latency",
    "latency_query",
    "recent_query",
    "silent_devices",
]

"""Inventory, supplies, alerts and health as data (msgspec Structs); meters live in ``meters``.

Every function takes a ``Scope`` (customer, period, now) and reads the database the models are
bound to (``open_database`` binds them). The CLI, the HTML/CSV renderers, the demo and a later
portal all call these; ``--format json`` is these Structs encoded as they are.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from peewee import JOIN, fn

from fsm_protocol.display import device_name

from .. import queries as core
from ..backup.schedule import BackupStatus
from ..backup.schedule import status as backup_status
from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import (
    AlertValue,
    Client,
    CounterLatest,
    CounterValue,
    Customer,
    Device,
    Envelope,
    Reading,
    Site,
    SupplyValue,
)
from .forecast import Forecast, Replacement, forecast

T = TypeVar("T")
NO_CUSTOMER = ""  # devices of reports that named no customer


class Scope(msgspec.Struct, kw_only=True):
    """Which devices and which period a report covers; ``end`` is exclusive."""

    start: datetime
    end: datetime
    now: datetime
    customer: str | None = None

    @classmethod
    def recent(cls, *, days: int = 30, customer: str | None = None, now: datetime | None = None) -> Scope:
        now = now or datetime.now(UTC)
        return cls(start=now - timedelta(days=days), end=now, now=now, customer=customer)


class DeviceInfo(msgspec.Struct, kw_only=True):
    """A device as every report names it."""

    id: int
    customer: str
    site: str
    client: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    ip: str
    location: str | None = None

    @property
    def name(self) -> str:
        """Maker and model, the maker once ("HP Color LaserJet M452nw", not "HP HP Color ...")."""
        return device_name(self.manufacturer, self.model)

    @property
    def label(self) -> str:
        return f"{self.name or 'device'} {self.serial or self.ip}"


class InventoryRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    firmware: str | None
    hostname: str | None
    mac: str | None
    pmd: str | None
    first_seen: datetime
    last_seen: datetime
    total: int | None  # the newest "total" page counter


class Inventory(msgspec.Struct, kw_only=True, tag="inventory", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    rows: list[InventoryRow]


class SupplyRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    description: str
    supply_kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    low: bool
    forecast: Forecast
    #: (observed_at, percent) over the forecast window and the period, for the chart
    history: list[tuple[datetime, float]] = msgspec.field(default_factory=list)


class Supplies(msgspec.Struct, kw_only=True, tag="supplies", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    rows: list[SupplyRow]
    replacements_in_period: int = 0
    early_replacements_in_period: int = 0


class AlertEpisode(msgspec.Struct, kw_only=True):
    """One condition on one device from the first reading showing it to the first not showing it."""

    device: DeviceInfo
    code: str
    severity: str
    description: str
    source: str  # "alert" (prtAlertTable) or "condition" (hrPrinterDetectedErrorState)
    start: datetime
    end: datetime | None  # None: still open in the newest reading
    duration_seconds: float


class Alerts(msgspec.Struct, kw_only=True, tag="alerts", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    open: list[AlertEpisode]
    recent: list[AlertEpisode]  # closed within the period


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


# -- devices in scope ---------------------------------------------------------------------------


def devices_in_scope(customer: str | None) -> dict[int, DeviceInfo]:
    """Every device (of ``customer`` when given), by id; a device's customer is its client's
    (``fsm_server.tenancy``)."""
    q = (Device.select(Device.id, Device.manufacturer, Device.model, Device.serial, Device.ip,
                       Device.location, Client.name.alias("client_name"), Site.name.alias("site_name"),
                       Customer.name.alias("customer_name"))
         .join(Client, on=(Device.client == Client.id))
         .switch(Device).join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
         .switch(Device).join(Customer, on=(Device.customer == Customer.id)))
    if customer is not None:
        q = q.where(Customer.name == customer)
    return {r.id: DeviceInfo(id=r.id, customer=r.customer_name or NO_CUSTOMER, site=r.site_name or "",
                             client=r.client_name, manufacturer=r.manufacturer, model=r.model,
                             serial=r.serial, ip=r.ip, location=r.location) for r in q.objects()}


def chunks(items: Iterable[T], size: int = 500) -> Iterable[list[T]]:
    """``items`` in lists of ``size`` (IN lists stay under the databases' parameter limits)."""
    listed = list(items)
    for i in range(0, len(listed), size):
        yield listed[i:i + size]


def device_sort_key(d: DeviceInfo) -> tuple[str, str, str, str]:
    return (d.customer, d.site, d.manufacturer or "", d.serial or d.ip)


# -- inventory ---------------------------------------------------------------------------------


def inventory(scope: Scope) -> Inventory:
    """Devices per customer and site with identity, location, first/last seen, PMD used."""
    with translated("cannot build the inventory report"):
        infos = devices_in_scope(scope.customer)
        rows = []
        for part in chunks(infos):
            q = (Device.select(Device, CounterLatest.value.alias("total"))
                 .join(CounterLatest, JOIN.LEFT_OUTER,
                       on=((CounterLatest.device == Device.id) & (CounterLatest.name == "total")))
                 .where(Device.id.in_(part)))
            for d in q.objects():
                rows.append(InventoryRow(device=infos[d.id], firmware=d.firmware, hostname=d.hostname,
                                         mac=d.mac, pmd=d.pmd, first_seen=d.first_seen, last_seen=d.last_seen,
                                         total=d.total))
    rows.sort(key=lambda r: device_sort_key(r.device))
    return Inventory(generated_at=scope.now, customer=scope.customer, rows=rows)


# -- supplies ----------------------------------------------------------------------------------


def _supply_key(s: SupplyValue) -> tuple[str, str, str]:
    where = str(s.index) if s.index is not None else s.description
    return (s.kind, s.color or "", where)


def supplies(scope: Scope, settings: ReportsSection | None = None, *, with_history: bool = False) -> Supplies:
    """Current levels, days-remaining forecasts and replacements of every supply in scope."""
    cfg = settings or ReportsSection()
    since = min(scope.start, scope.end - timedelta(days=cfg.forecast_window_days + 1))
    with translated("cannot build the supplies report"):
        infos = devices_in_scope(scope.customer)
        series: dict[tuple[int, tuple[str, str, str]], list[tuple[datetime, SupplyValue]]] = defaultdict(list)
        for part in chunks(infos):
            q = (SupplyValue.select(SupplyValue, Reading.device, Reading.observed_at)
                 .join(Reading)
                 .where(Reading.device.in_(part), Reading.observed_at >= since,
                        Reading.observed_at < scope.end)
                 .order_by(Reading.observed_at, SupplyValue.id))
            for s in q:
                series[(s.reading.device_id, _supply_key(s))].append((s.reading.observed_at, s))
    rows = []
    replaced = early = 0
    for (device_id, _key), points in series.items():
        at, newest = points[-1]
        history = [(t, s.percent) for t, s in points if s.percent is not None]
        f = forecast(history, now=scope.end, window_days=cfg.forecast_window_days,
                     min_span_days=cfg.forecast_min_span_days, min_points=cfg.forecast_min_points,
                     replacement_jump=cfg.replacement_jump_percent,
                     early_percent=cfg.early_replacement_percent)
        if newest.percent is None:
            f.days_remaining = f.empty_at = f.rate_per_day = None
            f.reason = f"the device reports no percent level (state {newest.state})"
        in_period = [r for r in f.replacements if scope.start <= r.at < scope.end]
        replaced += len(in_period)
        early += sum(r.early for r in in_period)
        low = newest.state in ("low", "empty") or (
            newest.percent is not None and newest.percent <= cfg.low_supply_percent)
        rows.append(SupplyRow(
            device=infos[device_id], description=newest.description, supply_kind=newest.kind,
            color=newest.color, percent=newest.percent, state=newest.state, observed_at=at, low=low,
            forecast=f, history=history if with_history else []))
    rows.sort(key=lambda r: (r.forecast.days_remaining is None, r.forecast.days_remaining or 0.0,
                             r.percent if r.percent is not None else 101.0, device_sort_key(r.device)))
    return Supplies(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                    rows=rows, replacements_in_period=replaced, early_replacements_in_period=early)


def supply_rank(row: SupplyRow) -> tuple[int, float]:
    """How urgent a supply is, most urgent first: empty, then low (by the device's state, whatever
    its percent), then by percent, then supplies whose level is unknown."""
    pct = row.percent if row.percent is not None else 0.0
    if row.state == "empty":
        return (0, pct)
    if row.state == "low":
        return (1, pct)
    return (2, pct) if row.percent is not None else (3, 0.0)


def lowest_supplies(rows: Iterable[SupplyRow]) -> dict[int, SupplyRow]:
    """Each device's most urgent supply (``supply_rank``), by device id: a Brother whose black toner
    is empty (it reports no percent) shows the toner, not its drum at 69 %."""
    out: dict[int, SupplyRow] = {}
    for row in rows:
        best = out.get(row.device.id)
        if best is None or supply_rank(row) < supply_rank(best):
            out[row.device.id] = row
    return out


def supply_replacements(rows: list[SupplyRow], scope: Scope) -> list[tuple[SupplyRow, Replacement]]:
    """The replacements within the period, newest first, with the supply they belong to."""
    out = [(r, rep) for r in rows for rep in r.forecast.replacements if scope.start <= rep.at < scope.end]
    return sorted(out, key=lambda x: x[1].at, reverse=True)


# -- alerts ------------------------------------------------------------------------------------

#: How far before the period alerts are read, so an episode that began earlier gets its real start.
ALERT_LOOKBACK = timedelta(days=90)


def alert_readings(device_ids: Iterable[int], *, since: datetime, until: datetime
                   ) -> dict[int, list[tuple[datetime, dict[str, tuple[str, str, str]]]]]:
    """Per device, its readings in time order, each with {code: (severity, description, source)}."""
    by_reading: dict[int, dict[str, tuple[str, str, str]]] = defaultdict(dict)
    readings: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for part in chunks(device_ids):
        q = (Reading.select(Reading.id, Reading.device, Reading.observed_at, Reading.conditions,
                            Reading.reachability)
             .where(Reading.device.in_(part), Reading.observed_at >= since, Reading.observed_at < until)
             .order_by(Reading.observed_at, Reading.id))
        ids = []
        for r in q:
            if r.reachability == "unreachable":
                continue  # says nothing about the device's conditions
            readings[r.device_id].append((r.id, r.observed_at))
            ids.append(r.id)
            for c in r.conditions or []:
                by_reading[r.id][c] = ("condition", c.replace("_", " "), "condition")
        for ids_part in chunks(ids):
            for a in AlertValue.select().where(AlertValue.reading.in_(ids_part)):
                by_reading[a.reading_id][a.code] = (a.severity, a.description or a.code.replace("_", " "),
                                                    "alert")
    return {dev: [(at, by_reading.get(rid, {})) for rid, at in rows] for dev, rows in readings.items()}


def alerts(scope: Scope) -> Alerts:
    """Open alerts (in each device's newest reading) and alerts closed within the period."""
    with translated("cannot build the alerts report"):
        infos = devices_in_scope(scope.customer)
        history = alert_readings(infos, since=scope.start - ALERT_LOOKBACK, until=scope.end)
    opened: list[AlertEpisode] = []
    closed: list[AlertEpisode] = []
    for dev, rows in history.items():
        running: dict[str, tuple[datetime, tuple[str, str, str]]] = {}
        for at, codes in rows:
            for code in list(running):
                if code not in codes:
                    began, (sev, desc, src) = running.pop(code)
                    if at >= scope.start:
                        closed.append(AlertEpisode(device=infos[dev], code=code, severity=sev,
                                                   description=desc, source=src, start=began, end=at,
                                                   duration_seconds=(at - began).total_seconds()))
            for code, what in codes.items():
                running.setdefault(code, (at, what))
        for code, (began, (sev, desc, src)) in running.items():
            opened.append(AlertEpisode(device=infos[dev], code=code, severity=sev, description=desc,
                                       source=src, start=began, end=None,
                                       duration_seconds=(scope.end - began).total_seconds()))
    opened.sort(key=lambda e: (e.start, device_sort_key(e.device), e.code))
    closed.sort(key=lambda e: (e.end or e.start), reverse=True)
    return Alerts(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                  open=opened, recent=closed)


# -- health ------------------------------------------------------------------------------------


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
    out = []
    for c in Client.select().order_by(Client.name):
        if names is not None and c.name not in names:
            continue
        recent = list(Envelope.select(Envelope.created_at).where(
            Envelope.client == c.id, Envelope.kind.in_(("periodic", "inventory")),
            Envelope.created_at < scope.end).order_by(Envelope.created_at.desc()).limit(11))
        last = (Envelope.select(Envelope.created_at, Envelope.ingested_at)
                .where(Envelope.client == c.id, Envelope.created_at < scope.end)
                .order_by(Envelope.created_at.desc()).first())
        count = Envelope.select().where(Envelope.client == c.id, Envelope.ingested_at >= scope.start,
                                        Envelope.ingested_at < scope.end).count()
        hours = expected_hours(sorted(e.created_at for e in recent), settings.expected_report_hours)
        reference = last.created_at if last else c.added_at
        silent = c.status == "active" and (
            scope.end - reference > timedelta(hours=hours + settings.silence_grace_hours))
        out.append(ClientHealth(client=c.name, status=c.status,
                                last_report_at=last.created_at if last else None,
                                last_ingested_at=last.ingested_at if last else None, reports_in_period=count,
                                expected_hours=hours, silent=silent))
    return out


def silent_devices(scope: Scope, settings: ReportsSection, infos: dict[int, DeviceInfo],
                   clients: list[ClientHealth]) -> list[SilentDevice]:
    expected = {c.client: c.expected_hours for c in clients}
    out = []
    for part in chunks(infos):
        for d in Device.select(Device.id, Device.last_seen).where(Device.id.in_(part)):
            info = infos[d.id]
            hours = expected.get(info.client, settings.expected_report_hours)
            quiet = scope.end - d.last_seen
            if quiet > timedelta(hours=hours + settings.silence_grace_hours):
                out.append(SilentDevice(device=info, last_seen=d.last_seen, expected_hours=hours,
                                        silent_hours=quiet.total_seconds() / 3600))
    return sorted(out, key=lambda s: s.last_seen)


def anomalies(scope: Scope, infos: dict[int, DeviceInfo]) -> list[Anomaly]:
    out = []
    for part in chunks(infos):
        q = (CounterValue.select().where(CounterValue.device.in_(part), CounterValue.flag.is_null(False),
                                         CounterValue.observed_at >= scope.start,
                                         CounterValue.observed_at < scope.end))
        out += [Anomaly(device=infos[c.device_id], counter=c.name, flag=c.flag, previous=c.previous,
                        value=c.value, observed_at=c.observed_at) for c in q]
    return sorted(out, key=lambda a: a.observed_at, reverse=True)


def latency(scope: Scope, infos: dict[int, DeviceInfo], *, limit: int = 200_000) -> Latency:
    samples: list[float] = []
    kinds: dict[str, list[float]] = defaultdict(list)
    q = (Reading.select(Reading.observed_at, Reading.device, Envelope.ingested_at, Envelope.kind)
         .join(Envelope)
         .where(Envelope.ingested_at >= scope.start, Envelope.ingested_at < scope.end)
         .order_by(Envelope.ingested_at.desc()).limit(limit))
    for r in q:
        if r.device_id not in infos:
            continue
        seconds = (r.envelope.ingested_at - r.observed_at).total_seconds()
        samples.append(seconds)
        kinds[r.envelope.kind].append(seconds)
    if not samples:
        return Latency()
    samples.sort()
    return Latency(count=len(samples), p50=_percentile(samples, 50), p90=_percentile(samples, 90),
                   p99=_percentile(samples, 99), max=samples[-1],
                   by_kind={k: statistics.median(v) for k, v in sorted(kinds.items())})


def collisions(infos: dict[int, DeviceInfo]) -> list[IdentityCollision]:
    """Serial identities held under more than one customer, with the devices of them in scope.
    (Weak identities name their client, so they cannot collide across customers.)"""
    shared = (Device.select(Device.identity).where(Device.identity.startswith("sn:"))
              .group_by(Device.identity).having(fn.COUNT(Device.customer.distinct()) > 1))
    held: dict[str, set[int]] = defaultdict(set)
    mine: dict[str, list[DeviceInfo]] = defaultdict(list)
    for d in Device.select(Device.id, Device.identity, Device.customer).where(Device.identity.in_(shared)):
        held[d.identity].add(d.customer_id)
        if d.id in infos:
            mine[d.identity].append(infos[d.id])
    out = [IdentityCollision(identity=ident, manufacturer=devs[0].manufacturer, serial=devs[0].serial,
                             customers=len(held[ident]), devices=sorted(devs, key=device_sort_key))
           for ident, devs in mine.items()]
    return sorted(out, key=lambda c: c.identity)


def health(scope: Scope, settings: ReportsSection | None = None) -> Health:
    """Silent clients and devices, sequence gaps, quarantine, counter anomalies, ingest latency,
    identities held under more than one customer."""
    cfg = settings or ReportsSection()
    with translated("cannot build the health report"):
        infos = devices_in_scope(scope.customer)
        clients = client_health(scope, cfg, infos)
        names = {c.client for c in clients}
        gaps = [GapRow(client=g.client, first=g.first, last=g.last, count=g.count, kind=g.kind)
                for g in core.gaps() if g.client in names]
        return Health(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                      clients=clients, silent_devices=silent_devices(scope, cfg, infos, clients), gaps=gaps,
                      quarantine=core.quarantine_counts(), anomalies=anomalies(scope, infos),
                      latency=latency(scope, infos), collisions=collisions(infos),
                      backup=None if scope.customer else backup_status(None, now=scope.now))


__all__ = [
    "ALERT_LOOKBACK",
    "NO_CUSTOMER",
    "AlertEpisode",
    "Alerts",
    "Anomaly",
    "ClientHealth",
    "DeviceInfo",
    "GapRow",
    "Health",
    "IdentityCollision",
    "Inventory",
    "InventoryRow",
    "Latency",
    "Scope",
    "SilentDevice",
    "Supplies",
    "SupplyRow",
    "alert_readings",
    "alerts",
    "anomalies",
    "chunks",
    "client_health",
    "collisions",
    "device_sort_key",
    "devices_in_scope",
    "expected_hours",
    "health",
    "inventory",
    "latency",
    "silent_devices",
    "supplies",
    "supply_replacements",
]

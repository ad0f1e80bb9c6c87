"""One device's page: identity, address history, status and open alerts, supplies with their
days-left forecast, counters, and for every value the report it came from (provenance).

Provenance is what fsm's envelopes make possible: each counter and supply value and the status
name the client, its sequence number, when the reading was observed, the report sealed, the mail
received and the report ingested, the Message-ID, the PMD that read the device and the client's
PMD bundle, and the OID the value was read from (the report's ``sources``, kept per reading in
``reading_source``). Readings loaded before migration 25, or sent by clients too old to say,
name the device's PMD and no OID.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import JOIN

from fsm_protocol.display import device_name

from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import (
    Client,
    CounterLatest,
    CounterValue,
    Customer,
    Device,
    DeviceAddress,
    Envelope,
    Reading,
    ReadingSource,
    Site,
    SupplyValue,
)
from ..reports.forecast import Forecast, forecast
from ..scoping import Scoped
from .alerts import AlertRow, open_alerts
from .latest import latest_states

if TYPE_CHECKING:
    # What the queries select beside a model's fields (other tables' columns, aliased columns)
    # peewee sets on each row; these declare it, for the rows that have it.

    class _ProvenanceRow(Reading):  # a reading with its envelope's fields and its client's name
        client_name: str
        seq: int
        kind: str
        created_at: datetime
        received_at: datetime
        ingested_at: datetime
        message_id: str | None
        pmd_bundle: str | None
        source_pmd: str | None
        source_map: dict[str, str] | None

    class _DatedSupply(SupplyValue):  # a supply value with its reading's observed_at
        at: datetime

    class _LatestCounter(CounterLatest):  # a counter's newest value with the reading and flag it has
        reading_id: int
        flag: str | None

    class _DeviceNames(Device):  # the names of a device's customer, site and client
        customer_name: str
        site_name: str | None
        client_name: str


#: How far back the chart looks.
HISTORY_DAYS = 90
#: Most points a chart series gets (a denser history keeps each bucket's last value).
MAX_POINTS = 400


class Provenance(msgspec.Struct, kw_only=True):
    """The report a value came from."""

    client: str
    seq: int
    kind: str
    observed_at: datetime
    sealed_at: datetime
    received_at: datetime
    ingested_at: datetime
    message_id: str | None
    pmd: str | None
    pmd_bundle: str | None = None  # the client's active PMD bundle when it sent the report
    oid: str | None = None  # the OID this value was read from (of the table row, for a supply)


class CounterNow(msgspec.Struct, kw_only=True):
    name: str
    value: int
    observed_at: datetime
    flag: str | None
    provenance: Provenance | None


class SupplyForecast(msgspec.Struct, kw_only=True):
    index: int | None = None  # the device's supply index (prtMarkerSuppliesIndex)
    description: str
    kind: str
    color: str | None
    percent: float | None
    state: str
    forecast: Forecast
    provenance: Provenance | None


class Address(msgspec.Struct, kw_only=True):
    ip: str
    mac: str
    first_seen: datetime
    last_seen: datetime


class DeviceView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    hostname: str | None
    location: str | None
    mac: str | None
    ip: str
    pmd: str | None
    customer: str
    site: str
    client: str
    first_seen: datetime
    last_seen: datetime
    status: str
    printer_status: str | None
    addresses: list[Address]
    alerts: list[AlertRow]  # open in the newest reading, with when each began and who acknowledged it
    supplies: list[SupplyForecast]
    counters: list[CounterNow]
    provenance: Provenance | None  # of the newest reading (status, alerts, supplies)


class _Origin(msgspec.Struct, kw_only=True):
    """The report of one reading, and where each of its fields was read (``sources``)."""

    report: Provenance
    sources: dict[str, str]

    def of(self, *fields: str) -> Provenance:
        """The report with the OID of the first of ``fields`` the reading names."""
        oid = next((self.sources[f] for f in fields if f in self.sources), None)
        return msgspec.structs.replace(self.report, oid=oid)


def _provenance_by_reading(reading_ids: list[int], pmd: str | None) -> dict[int, _Origin]:
    q = (
        Reading.select(
            Reading.id,
            Reading.observed_at,
            Envelope.seq,
            Envelope.kind,
            Envelope.created_at,
            Envelope.received_at,
            Envelope.ingested_at,
            Envelope.message_id,
            Envelope.pmd_bundle,
            Client.name.alias("client_name"),
            ReadingSource.pmd.alias("source_pmd"),
            ReadingSource.sources.alias("source_map"),
        )
        .join(Envelope, on=(Reading.envelope == Envelope.id))
        .join(Client, on=(Envelope.client == Client.id))
        .switch(Reading)
        .join(ReadingSource, JOIN.LEFT_OUTER, on=(Reading.source_id == ReadingSource.id))
        .where(Reading.id.in_(reading_ids))
    )
    return {
        r.id: _Origin(
            report=Provenance(
                client=r.client_name,
                seq=r.seq,
                kind=r.kind,
                observed_at=r.observed_at,
                sealed_at=r.created_at,
                received_at=r.received_at,
                ingested_at=r.ingested_at,
                message_id=r.message_id,
                pmd=r.source_pmd or pmd,
                pmd_bundle=r.pmd_bundle,
            ),
            sources=_sources(r.source_map),
        )
        for r in cast("Iterable[_ProvenanceRow]", q.objects())
    }


def _sources(value: object) -> dict[str, str]:
    """A reading_source.sources value as read through an alias (text on SQLite, peewee leaves it)."""
    if isinstance(value, str):
        value = msgspec.json.decode(value)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _supplies(
    device_id: int, settings: ReportsSection, now: datetime, newest_reading: int | None
) -> list[SupplyForecast]:
    since = now - timedelta(days=max(settings.forecast_window_days, 1) + 1)
    series: dict[tuple[str, str, str], list[tuple[datetime, SupplyValue]]] = defaultdict(list)
    q = (
        SupplyValue.select(SupplyValue, Reading.observed_at.alias("at"))
        .join(Reading)
        .where(Reading.device == device_id, Reading.observed_at >= since)
        .order_by(Reading.observed_at, SupplyValue.id)
    )
    for s in cast("Iterable[_DatedSupply]", q.objects()):
        where = str(s.index) if s.index is not None else s.description
        series[(s.kind, s.color or "", where)].append((Reading.observed_at.python_value(s.at), s))
    out = []
    for points in series.values():
        _, newest = points[-1]
        if newest_reading is not None and newest.reading_id != newest_reading:
            continue  # a supply the device no longer reports
        history = [(t, s.percent) for t, s in points if s.percent is not None]
        f = forecast(
            history,
            now=now,
            window_days=settings.forecast_window_days,
            min_span_days=settings.forecast_min_span_days,
            min_points=settings.forecast_min_points,
            replacement_jump=settings.replacement_jump_percent,
            early_percent=settings.early_replacement_percent,
        )
        if newest.percent is None:
            f.days_remaining = f.empty_at = f.rate_per_day = None
            f.reason = f"the device reports no percent level (state {newest.state})"
        out.append(
            SupplyForecast(
                index=newest.index,
                description=newest.description,
                kind=newest.kind,
                color=newest.color,
                percent=newest.percent,
                state=newest.state,
                forecast=f,
                provenance=None,
            )
        )
    return out


def device_view(
    scoped: Scoped, device_id: int, *, now: datetime, settings: ReportsSection | None = None
) -> DeviceView:
    """Device ``device_id`` if in scope (NotFound otherwise), everything its page shows."""
    cfg = settings or ReportsSection()
    d = scoped.device(device_id)
    with translated(f"cannot read device {device_id}"):
        names_q = (
            Device.select(
                Customer.name.alias("customer_name"),
                Site.name.alias("site_name"),
                Client.name.alias("client_name"),
            )
            .join(Customer, on=(Device.customer == Customer.id))
            .switch(Device)
            .join(Client, on=(Device.client == Client.id))
            .switch(Device)
            .join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
            .where(Device.id == d.id)
        )
        names = cast("_DeviceNames", names_q.objects().get())
        addresses = [
            Address(ip=a.ip, mac=a.mac, first_seen=a.first_seen, last_seen=a.last_seen)
            for a in DeviceAddress.select()
            .where(DeviceAddress.device == d.id)
            .order_by(DeviceAddress.last_seen.desc())
            .limit(100)
        ]
        state = latest_states([d.id]).get(d.id)
        counters_q = (
            CounterLatest.select(
                CounterLatest.name,
                CounterLatest.value,
                CounterLatest.observed_at,
                CounterValue.reading.alias("reading_id"),
                CounterValue.flag,
            )
            .join(
                CounterValue,
                on=(
                    (CounterValue.device == CounterLatest.device)
                    & (CounterValue.name == CounterLatest.name)
                    & (CounterValue.observed_at == CounterLatest.observed_at)
                ),
            )
            .where(CounterLatest.device == d.id)
            .order_by(CounterLatest.name)
        )
        counter_rows: dict[str, _LatestCounter] = {}
        for c in cast("Iterable[_LatestCounter]", counters_q.objects()):
            known = counter_rows.get(c.name)
            if known is None or c.reading_id > known.reading_id:
                counter_rows[c.name] = c
        supplies = _supplies(d.id, cfg, now, state.reading_id if state else None)
        wanted = {c.reading_id for c in counter_rows.values()} | ({state.reading_id} if state else set())
        prov = _provenance_by_reading(sorted(wanted), d.pmd)
        alerts = open_alerts(scoped, now=now, device_id=d.id)[0] if state and state.alerts else []
    origin = prov.get(state.reading_id) if state else None
    for s in supplies:
        if origin is not None:  # the supply's own row, else the table it was read from
            s.provenance = origin.of(f"supplies.{s.index}", "supplies")
    counters = [
        CounterNow(
            name=c.name,
            value=c.value,
            observed_at=c.observed_at,
            flag=c.flag,
            provenance=counter_origin.of(f"counters.{c.name}")
            if (counter_origin := prov.get(c.reading_id))
            else None,
        )
        for c in counter_rows.values()
    ]
    status = (
        "unknown"
        if state is None
        else (state.reachability if state.reachability != "ok" else state.device_status or "unknown")
    )
    return DeviceView(
        id=d.id,
        name=device_name(d.manufacturer, d.model),
        manufacturer=d.manufacturer,
        model=d.model,
        serial=d.serial,
        firmware=d.firmware,
        hostname=d.hostname,
        location=d.location,
        mac=d.mac,
        ip=d.ip,
        pmd=d.pmd,
        customer=names.customer_name,
        site=names.site_name or "",
        client=names.client_name,
        first_seen=d.first_seen,
        last_seen=d.last_seen,
        status=status,
        printer_status=state.printer_status if state else None,
        addresses=addresses,
        alerts=alerts,
        supplies=supplies,
        counters=counters,
        provenance=origin.of("status") if origin else None,
    )


class CounterChart(msgspec.Struct, kw_only=True):
    """Counter history in uPlot's shape: ``x`` (Unix seconds) and one list per counter, aligned."""

    device: int
    start: datetime
    end: datetime
    x: list[int]
    series: dict[str, list[int | None]]


def counter_chart(
    scoped: Scoped, device_id: int, *, now: datetime, days: int = HISTORY_DAYS, max_points: int = MAX_POINTS
) -> CounterChart:
    """The device's counters over the last ``days`` (NotFound when not in scope); a history with
    more readings than ``max_points`` keeps each time bucket's last value."""
    d = scoped.device(device_id)
    start = now - timedelta(days=max(1, min(days, 3650)))
    with translated(f"cannot read device {device_id}'s counters"):
        q = (
            CounterValue.select(CounterValue.name, CounterValue.value, CounterValue.observed_at)
            .where(
                CounterValue.device == d.id,
                CounterValue.observed_at >= start,
                CounterValue.observed_at <= now,
            )
            .order_by(CounterValue.observed_at, CounterValue.id)
            .tuples()
        )
        rows = list(cast("Iterable[tuple[str, int, datetime]]", q))
    span = max((now - start).total_seconds(), 1.0)
    bucket = span / max_points
    # Times apart from the values: a counter may have any name a client reports.
    points: dict[int, dict[str, int]] = defaultdict(dict)
    times: dict[int, int] = {}
    for name, value, at in rows:
        slot = int((at - start).total_seconds() // bucket)
        points[slot][name] = value
        times[slot] = int(at.timestamp())
    names = sorted({n for n_values in points.values() for n in n_values})
    slots = sorted(points)
    x = [times[s] for s in slots]
    series = {n: [points[s].get(n) for s in slots] for n in names}
    return CounterChart(device=d.id, start=start, end=now, x=x, series=series)


__all__ = [
    "HISTORY_DAYS",
    "Address",
    "CounterChart",
    "CounterNow",
    "DeviceView",
    "Provenance",
    "SupplyForecast",
    "counter_chart",
    "device_view",
]

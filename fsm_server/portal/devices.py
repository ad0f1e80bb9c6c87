"""The devices list: search, filters, sort and paging over the devices in scope, and its CSV.

One page costs four queries (count, the page's devices, their newest readings' supplies and
alerts) plus one for the counters, whatever the fleet's size; filters on status and supply
level look at each device's newest reading (``latest``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
import peewee
from peewee import JOIN, fn

from fsm_protocol.display import device_name

from ..db.connect import translated
from ..db.models import AlertValue, Client, CounterLatest, Customer, Device, Reading, Site, SupplyValue
from ..reports.csv import spreadsheet_cell
from ..scoping import Scoped
from .latest import LatestState, SupplyNow, latest_states, newest_reading_of_outer_device

if TYPE_CHECKING:

    class _ListedDevice(Device):  # a device with the names ``_selected`` adds (aliased columns)
        customer_name: str
        site_name: str | None
        client_name: str


PAGE_SIZE = 50
#: What a status filter may ask for: the newest reading's hrDeviceStatus, "unreachable", "alerts".
STATUSES: tuple[str, ...] = ("running", "warning", "down", "testing", "unreachable", "alerts")
SORTS: dict[str, tuple[peewee.Field, ...]] = {
    "name": (Device.manufacturer, Device.model),
    "serial": (Device.serial,),
    "customer": (Customer.name,),
    "site": (Site.name,),
    "ip": (Device.ip,),
    "location": (Device.location,),
    "last_seen": (Device.last_seen,),
}
#: Longest search text taken (a longer one is cut; it is only ever a LIKE pattern).
MAX_SEARCH = 100


class DeviceFilter(msgspec.Struct, kw_only=True):
    """What the devices list is narrowed to; every field optional."""

    q: str = ""  # in maker, model, serial, IP, hostname, location
    customer: str = ""
    site: str = ""
    model: str = ""
    status: str = ""  # one of STATUSES
    supply_max: float | None = None  # a supply at or below this percent, or low/empty
    silent_hours: float | None = None  # no reading for at least this long
    sort: str = "name"
    desc: bool = False
    page: int = 1


class DeviceListRow(msgspec.Struct, kw_only=True):
    id: int
    name: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    ip: str
    customer: str
    site: str
    client: str
    location: str | None
    last_seen: datetime
    total: int | None
    status: str  # the newest reading's device status, or its reachability when not ok
    alerts: int
    lowest: SupplyNow | None


class DevicePage(msgspec.Struct, kw_only=True):
    rows: list[DeviceListRow]
    total: int
    page: int
    pages: int
    filter: DeviceFilter


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _ilike(field: peewee.Field, text: str) -> peewee.Expression:
    # "ILIKE": PostgreSQL's case-insensitive LIKE; peewee writes SQLite's (case-insensitive) LIKE
    return peewee.Expression(
        field, "ILIKE", peewee.NodeList((peewee.Value(_like(text)), peewee.SQL("ESCAPE '\\'")))
    )


def _filtered(scoped: Scoped, f: DeviceFilter, now: datetime) -> peewee.ModelSelect[Device]:
    q = (
        scoped.devices()
        .join(Customer, on=(Device.customer == Customer.id))
        .switch(Device)
        .join(Client, on=(Device.client == Client.id))
        .switch(Device)
        .join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
        .switch(Device)
    )
    text = f.q.strip()[:MAX_SEARCH]
    if text:
        q = q.where(
            _ilike(Device.manufacturer, text)
            | _ilike(Device.model, text)
            | _ilike(Device.serial, text)
            | _ilike(Device.ip, text)
            | _ilike(Device.hostname, text)
            | _ilike(Device.location, text)
        )
    if f.customer:
        q = q.where(Customer.name == f.customer)
    if f.site:
        q = q.where(Site.name == f.site)
    if f.model:
        q = q.where(_ilike(Device.model, f.model.strip()[:MAX_SEARCH]))
    if f.silent_hours is not None:
        q = q.where(Device.last_seen <= now - timedelta(hours=f.silent_hours))
    if f.status in STATUSES or f.supply_max is not None:
        newest = newest_reading_of_outer_device()
        if f.status == "unreachable":
            newest = newest.where(Reading.reachability == "unreachable")
        elif f.status == "alerts":
            newest = newest.where(
                Reading.conditions.is_null(False)
                | fn.EXISTS(AlertValue.select(AlertValue.id).where(AlertValue.reading == Reading.id))
            )
        elif f.status:
            newest = newest.where(Reading.device_status == f.status)
        if f.supply_max is not None:
            newest = newest.where(
                fn.EXISTS(
                    SupplyValue.select(SupplyValue.id).where(
                        (SupplyValue.reading == Reading.id)
                        & (SupplyValue.state.in_(("low", "empty")) | (SupplyValue.percent <= f.supply_max))
                    )
                )
            )
        q = q.where(fn.EXISTS(newest))
    return q


def _status(state: LatestState | None) -> str:
    if state is None:
        return "unknown"
    if state.reachability != "ok":
        return state.reachability
    return state.device_status or "unknown"


def _rows(devices: Sequence[_ListedDevice], now: datetime) -> list[DeviceListRow]:
    ids = [d.id for d in devices]
    states = latest_states(ids)
    totals: dict[int, int] = {}
    if ids:
        q = (
            CounterLatest.select(CounterLatest.device, CounterLatest.value)
            .where(CounterLatest.device.in_(ids), CounterLatest.name == "total")
            .tuples()
        )
        totals = dict(cast("Iterable[tuple[int, int]]", q))
    out = []
    for d in devices:
        state = states.get(d.id)
        out.append(
            DeviceListRow(
                id=d.id,
                name=device_name(d.manufacturer, d.model),
                manufacturer=d.manufacturer,
                model=d.model,
                serial=d.serial,
                ip=d.ip,
                customer=d.customer_name,
                site=d.site_name or "",
                client=d.client_name,
                location=d.location,
                last_seen=d.last_seen,
                total=totals.get(d.id),
                status=_status(state),
                alerts=len(state.alerts) if state else 0,
                lowest=state.lowest if state else None,
            )
        )
    return out


def _ordered(q: peewee.ModelSelect[Device], f: DeviceFilter) -> peewee.ModelSelect[Device]:
    fields = SORTS.get(f.sort, SORTS["name"])
    order = [fld.desc(nulls="LAST") if f.desc else fld.asc(nulls="LAST") for fld in fields]
    return q.order_by(*order, Device.id)


def _selected(q: peewee.ModelSelect[Device]) -> peewee.ModelSelect[Device]:
    return q.select(
        Device.id,
        Device.manufacturer,
        Device.model,
        Device.serial,
        Device.ip,
        Device.location,
        Device.last_seen,
        Customer.name.alias("customer_name"),
        Site.name.alias("site_name"),
        Client.name.alias("client_name"),
    )


def device_page(scoped: Scoped, f: DeviceFilter, *, now: datetime, page_size: int = PAGE_SIZE) -> DevicePage:
    """One page of the devices in scope that pass ``f``."""
    with translated("cannot list devices"):
        q = _filtered(scoped, f, now)
        total = q.count()
        pages = max(1, -(-total // page_size))
        page = min(max(1, f.page), pages)
        shown = _selected(_ordered(q, f)).paginate(page, page_size)
        devices = list(cast("Iterable[_ListedDevice]", shown.objects()))
        rows = _rows(devices, now)
    return DevicePage(rows=rows, total=total, page=page, pages=pages, filter=f)


CSV_COLUMNS = (
    "customer",
    "site",
    "client",
    "manufacturer",
    "model",
    "serial",
    "ip",
    "location",
    "last_seen",
    "status",
    "alerts",
    "total",
    "lowest_supply",
    "lowest_percent",
    "lowest_state",
)


def devices_csv(scoped: Scoped, f: DeviceFilter, *, now: datetime, batch: int = 500) -> Iterator[str]:
    """Every device in scope that passes ``f``, as CSV lines (formula-like cells defused), in
    batches so a large fleet streams."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    yield out.getvalue()
    page = 1
    with translated("cannot export devices"):
        q = _selected(_ordered(_filtered(scoped, f, now), f))
        while True:
            devices = list(cast("Iterable[_ListedDevice]", q.paginate(page, batch).objects()))
            if not devices:
                return
            out.seek(0)
            out.truncate()
            for r in _rows(devices, now):
                low = r.lowest
                w.writerow(
                    [
                        spreadsheet_cell(c)
                        for c in (
                            r.customer,
                            r.site,
                            r.client,
                            r.manufacturer or "",
                            r.model or "",
                            r.serial or "",
                            r.ip,
                            r.location or "",
                            r.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            r.status,
                            r.alerts,
                            "" if r.total is None else r.total,
                            low.description if low else "",
                            "" if low is None or low.percent is None else f"{low.percent:.0f}",
                            low.state if low else "",
                        )
                    ]
                )
            yield out.getvalue()
            page += 1


def filter_choices(scoped: Scoped) -> tuple[list[str], list[str]]:
    """The customers and sites the filters offer (those in scope)."""
    with translated("cannot list customers"):
        customers = [c.name for c in scoped.customers().select(Customer.name).order_by(Customer.name)]
        sites = [
            s.name
            for s in scoped.restrict(Site.select(Site.name).distinct(), Site.customer).order_by(Site.name)
        ]
    return customers, sites


__all__ = [
    "CSV_COLUMNS",
    "PAGE_SIZE",
    "SORTS",
    "STATUSES",
    "DeviceFilter",
    "DeviceListRow",
    "DevicePage",
    "device_page",
    "devices_csv",
    "filter_choices",
]

"""The devices list: search, filters, sort and paging over the devices in scope, and its CSV.

One page costs three queries whatever the fleet's size: the count, the page's devices with
their kept state and total page counter, and their supplies. Filters on status, alerts and
supply level read the state ingest keeps (``latest``), never the readings; every filter and sort
is backed by an index (migrations m006, m023; ``docs/portal-pages.md`` lists them), so the count
and the page read index entries of the devices in scope, not the fleet's history. Paging is by
OFFSET, bounded by the count (at most the devices in scope).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
import peewee
from peewee import JOIN

from fsm_protocol.display import device_name

from ..db.connect import translated
from ..db.models import Client, CounterLatest, Customer, Device, DeviceLatest, Site
from ..reports.csv import spreadsheet_cell
from ..scoping import Scoped
from .latest import SupplyNow, in_status, low_supply, lowest, supplies_now, with_state

if TYPE_CHECKING:

    class _ListedDevice(Device):  # a device with the names ``_selected`` adds (aliased columns)
        customer_name: str
        site_name: str | None
        client_name: str
        reachability: str | None
        device_status: str | None
        conditions: object  # JSON text (or a list, when the driver decodes it)
        alerts: object
        total: int | None


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
    """The devices in scope that pass ``f``, joined to their kept state (``latest.with_state``)
    and nothing else, so that counting them reads only the indexes the filters need."""
    q = with_state(scoped.devices())
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
        q = q.where(Device.customer.in_(Customer.select(Customer.id).where(Customer.name == f.customer)))
    if f.site:
        q = q.where(Device.site.in_(Site.select(Site.id).where(Site.name == f.site)))
    if f.model:
        q = q.where(_ilike(Device.model, f.model.strip()[:MAX_SEARCH]))
    if f.silent_hours is not None:
        q = q.where(Device.last_seen <= now - timedelta(hours=f.silent_hours))
    if f.status in STATUSES:
        q = q.where(in_status(f.status))
    if f.supply_max is not None:
        q = q.where(low_supply(f.supply_max))
    return q


def _status(reachability: str | None, device_status: str | None) -> str:
    if reachability is None:
        return "unknown"
    if reachability != "ok":
        return reachability
    return device_status or "unknown"


def _rows(devices: Sequence[_ListedDevice]) -> list[DeviceListRow]:
    supplies = supplies_now([d.id for d in devices])
    out = []
    for d in devices:
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
                total=d.total,
                status=_status(d.reachability, d.device_status),
                alerts=len(_json_list(d.conditions)) + len(_json_list(d.alerts)),
                lowest=lowest(supplies.get(d.id, [])),
            )
        )
    return out


def _json_list(value: object) -> list[object]:
    """A JSON list column read through an aliased select (text, not converted by its field)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    decoded = msgspec.json.decode(str(value))
    return decoded if isinstance(decoded, list) else []


def _ordered(q: peewee.ModelSelect[Device], f: DeviceFilter) -> peewee.ModelSelect[Device]:
    # Descending is ascending reversed, unknown values (NULL) included: both read one index of m023.
    fields = SORTS.get(f.sort, SORTS["name"])
    if f.desc:
        return q.order_by(*(fld.desc(nulls="FIRST") for fld in fields), Device.id.desc())
    return q.order_by(*(fld.asc(nulls="LAST") for fld in fields), Device.id)


def _selected(q: peewee.ModelSelect[Device]) -> peewee.ModelSelect[Device]:
    """``q`` (over Device joined ``with_state``) with what a row shows: names, state, the total
    page counter."""
    return (
        q.join(Customer, on=(Device.customer == Customer.id))
        .switch(Device)
        .join(Client, on=(Device.client == Client.id))
        .switch(Device)
        .join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
        .switch(Device)
        .join(
            CounterLatest,
            JOIN.LEFT_OUTER,
            on=((CounterLatest.device == Device.id) & (CounterLatest.name == "total")),
        )
        .select(
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
            DeviceLatest.reachability.alias("reachability"),
            DeviceLatest.device_status.alias("device_status"),
            DeviceLatest.conditions.alias("conditions"),
            DeviceLatest.alerts.alias("alerts"),
            CounterLatest.value.alias("total"),
        )
    )


def _page_of(
    q: peewee.ModelSelect[Device], f: DeviceFilter, page: int, size: int
) -> peewee.ModelSelect[Device]:
    """Page ``page`` of ``q`` (from ``_filtered``) sorted by ``f``, as rows: the page's device ids
    are picked first, by the filters and the sort alone, then what a row shows is joined to those
    ids only, so the joins cost a page's rows, not every device in scope."""
    ids = q.select(Device.id)
    if f.sort == "customer":
        ids = ids.join(Customer, on=(Device.customer == Customer.id)).switch(Device)
    elif f.sort == "site":
        ids = ids.join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id)).switch(Device)
    ids = _ordered(ids, f).paginate(page, size)
    return _ordered(_selected(with_state(Device.select()).where(Device.id.in_(ids))), f)


def device_page(scoped: Scoped, f: DeviceFilter, *, now: datetime, page_size: int = PAGE_SIZE) -> DevicePage:
    """One page of the devices in scope that pass ``f`` (three queries: count, page, supplies)."""
    with translated("cannot list devices"):
        q = _filtered(scoped, f, now)
        total = q.count()
        pages = max(1, -(-total // page_size))
        page = min(max(1, f.page), pages)
        shown = _page_of(q, f, page, page_size)
        devices = list(cast("Iterable[_ListedDevice]", shown.objects()))
        rows = _rows(devices)
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
        q = _filtered(scoped, f, now)
        while True:
            devices = list(cast("Iterable[_ListedDevice]", _page_of(q, f, page, batch).objects()))
            if not devices:
                return
            out.seek(0)
            out.truncate()
            for r in _rows(devices):
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

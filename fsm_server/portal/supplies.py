"""The fleet-wide supplies list: every supply in scope with its level, forecast and open order,
filtered by level, days left, kind, colour and customer, sorted and paged.

It reads ``supply_latest`` (the state ingest keeps, one row per supply) joined to its device: one
count, one page of rows and one query for the page's open orders, whatever the fleet's size.
Days left is to the forecast empty date (``supply_latest.empty_at``, indexed) from now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
import peewee

from fsm_protocol.display import device_name
from fsm_protocol.vocabulary import COLORS, SUPPLY_KIND_NAMES

from ..db.connect import translated
from ..db.models import Customer, Device, SupplyLatest
from ..orders.models import OPEN_STATES, SupplyOrder
from ..orders.partnumbers import part_number
from ..scoping import Scoped

if TYPE_CHECKING:

    class _ListedSupply(SupplyLatest):  # a supply with the names ``_selected`` adds
        customer_name: str
        manufacturer: str | None
        model: str | None
        serial: str | None


PAGE_SIZE = 50
KINDS: tuple[str, ...] = tuple(sorted(SUPPLY_KIND_NAMES))
SUPPLY_COLORS: tuple[str, ...] = COLORS
SORTS: dict[str, tuple[peewee.Field, ...]] = {
    "days_left": (SupplyLatest.empty_at,),
    "level": (SupplyLatest.percent,),
    "customer": (Customer.name, Device.id),
    "device": (Device.manufacturer, Device.model, Device.id),
    "kind": (SupplyLatest.kind, SupplyLatest.color),
}


class SupplyFilter(msgspec.Struct, kw_only=True):
    customer: str = ""
    kind: str = ""  # one of KINDS
    color: str = ""  # one of SUPPLY_COLORS
    level_max: float | None = None  # percent at most this, or reported low/empty
    days_max: float | None = None  # forecast empty within this many days
    sort: str = "days_left"
    desc: bool = False
    page: int = 1


class SupplyRow(msgspec.Struct, kw_only=True):
    device_id: int
    device: str
    serial: str | None
    customer: str
    description: str
    part_number: str | None
    kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    empty_at: datetime | None
    days_left: float | None
    order_id: int | None  # the open order of this supply
    order_state: str | None


class SupplyPage(msgspec.Struct, kw_only=True):
    rows: list[SupplyRow]
    total: int
    page: int
    pages: int
    filter: SupplyFilter


def _filtered(scoped: Scoped, f: SupplyFilter, now: datetime) -> peewee.ModelSelect[SupplyLatest]:
    q = (
        SupplyLatest.select()
        .join(Device, on=(SupplyLatest.device == Device.id))
        .join(Customer, on=(Device.customer == Customer.id))
    )
    q = scoped.restrict(q, Device.customer)
    if f.customer:
        q = q.where(Customer.name == f.customer)
    if f.kind in KINDS:
        q = q.where(SupplyLatest.kind == f.kind)
    if f.color in SUPPLY_COLORS:
        q = q.where(SupplyLatest.color == f.color)
    if f.level_max is not None:
        q = q.where((SupplyLatest.percent <= f.level_max) | SupplyLatest.state.in_(("low", "empty")))
    if f.days_max is not None:
        q = q.where(SupplyLatest.empty_at <= now + timedelta(days=f.days_max))
    return q


def _selected(q: peewee.ModelSelect[SupplyLatest]) -> peewee.ModelSelect[SupplyLatest]:
    return q.select(
        SupplyLatest.device,
        SupplyLatest.key,
        SupplyLatest.description,
        SupplyLatest.kind,
        SupplyLatest.color,
        SupplyLatest.percent,
        SupplyLatest.state,
        SupplyLatest.observed_at,
        SupplyLatest.empty_at,
        Customer.name.alias("customer_name"),
        Device.manufacturer.alias("manufacturer"),
        Device.model.alias("model"),
        Device.serial.alias("serial"),
    )


def _open_orders(device_ids: list[int]) -> dict[tuple[int, str], tuple[int, str]]:
    if not device_ids:
        return {}
    q = (
        SupplyOrder.select(SupplyOrder.device, SupplyOrder.supply_key, SupplyOrder.id, SupplyOrder.state)
        .where(SupplyOrder.device.in_(device_ids), SupplyOrder.state.in_(OPEN_STATES))
        .tuples()
    )
    return {(d, k): (i, s) for d, k, i, s in cast("Iterable[tuple[int, str, int, str]]", q)}


def supply_page(scoped: Scoped, f: SupplyFilter, *, now: datetime, page_size: int = PAGE_SIZE) -> SupplyPage:
    """One page of the supplies in scope that pass ``f``."""
    with translated("cannot list supplies"):
        q = _filtered(scoped, f, now)
        total = q.count()
        pages = max(1, -(-total // page_size))
        page = min(max(1, f.page), pages)
        fields = SORTS.get(f.sort, SORTS["days_left"])
        ordering = [fld.desc(nulls="LAST") if f.desc else fld.asc(nulls="LAST") for fld in fields]
        shown = (
            _selected(q).order_by(*ordering, SupplyLatest.device, SupplyLatest.key).paginate(page, page_size)
        )
        found = list(cast("Iterable[_ListedSupply]", shown.objects()))
        orders = _open_orders(sorted({s.device_id for s in found}))
    rows = []
    for s in found:
        order = orders.get((s.device_id, s.key))
        rows.append(
            SupplyRow(
                device_id=s.device_id,
                device=device_name(s.manufacturer, s.model),
                serial=s.serial,
                customer=s.customer_name,
                description=s.description,
                part_number=part_number(s.description),
                kind=s.kind,
                color=s.color,
                percent=s.percent,
                state=s.state,
                observed_at=s.observed_at,
                empty_at=s.empty_at,
                days_left=None if s.empty_at is None else (s.empty_at - now).total_seconds() / 86400,
                order_id=order[0] if order else None,
                order_state=order[1] if order else None,
            )
        )
    return SupplyPage(rows=rows, total=total, page=page, pages=pages, filter=f)


__all__ = [
    "KINDS",
    "PAGE_SIZE",
    "SORTS",
    "SUPPLY_COLORS",
    "SupplyFilter",
    "SupplyPage",
    "SupplyRow",
    "supply_page",
]

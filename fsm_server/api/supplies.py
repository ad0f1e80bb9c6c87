"""``/supplies``: every supply in the token's scope with its newest level and days remaining, from
the fit kept at ingest (``db.state``), in (device, supply) order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import peewee
from msgspec import UNSET

from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import Customer, Device, SupplyLatest
from ..db.state import Fit
from ..scoping import Scoped
from .endpoint import Call, Endpoint
from .schemas import DeviceSupply, SuppliesQuery, Supply, SupplyList

if TYPE_CHECKING:

    class _SupplyRow(SupplyLatest):  # with its device's id and customer's name (``_in_scope``)
        device_id: int
        customer_name: str


def _forecast(row: SupplyLatest, settings: ReportsSection) -> tuple[float | None, float | None]:
    """(rate per day, days remaining) of the supply's fit; Nones when it cannot say."""
    fit = Fit(
        since=row.since,
        last_at=row.last_at,
        last_percent=row.last_percent,
        replaced_at=row.replaced_at,
        n=row.n,
        sx=row.sx,
        sy=row.sy,
        sxx=row.sxx,
        sxy=row.sxy,
    )
    found = fit.forecast(
        min_points=settings.forecast_min_points, min_span_days=settings.forecast_min_span_days
    )
    if found is None:
        return None, None
    rate, days = found
    return rate, (None if row.percent is None else days)


def _supply(row: SupplyLatest, settings: ReportsSection) -> dict[str, Any]:
    rate, days = _forecast(row, settings)
    return {
        "description": row.description,
        "kind": row.kind,
        "color": row.color,
        "percent": row.percent,
        "state": row.state,
        "observed_at": row.observed_at,
        "replaced_at": row.replaced_at,
        "rate_per_day": rate,
        "days_remaining": days,
    }


def _in_scope(scoped: Scoped) -> peewee.ModelSelect[SupplyLatest]:
    q = (
        SupplyLatest.select(SupplyLatest, Customer.name.alias("customer_name"))
        .join(Device, on=(SupplyLatest.device == Device.id))
        .join(Customer, on=(Device.customer == Customer.id))
    )
    return scoped.restrict(q, Device.customer).objects()


def device_supplies(scoped: Scoped, device_id: int, settings: ReportsSection) -> list[Supply]:
    """The supplies of one device in scope (the caller checked the device)."""
    q = _in_scope(scoped).where(SupplyLatest.device == device_id).order_by(SupplyLatest.key)
    return [Supply(**_supply(r, settings)) for r in q]


def encode_cursor(device_id: int, key: str) -> str:
    """Where a page ended: the next one starts after this device's supply (any such text is a place)."""
    return f"{device_id}:{key}"


def decode_cursor(text: str) -> tuple[int, str] | None:
    """(device id, supply key) of a cursor the query's pattern let through; None: from the start."""
    if not text:
        return None
    device_id, _, key = text.partition(":")
    return int(device_id), key


def list_supplies(call: Call) -> SupplyList:
    q: SuppliesQuery = call.query
    scoped = call.scoped
    cursor = decode_cursor(q.after)
    with translated("cannot list supplies"):
        found = _in_scope(scoped)
        if q.customer is not UNSET:
            found = found.where(Device.customer == scoped.customer_named(q.customer).id)
        if q.device_id is not UNSET:
            found = found.where(SupplyLatest.device == scoped.device(q.device_id).id)
        if q.kind is not UNSET:
            found = found.where(SupplyLatest.kind == q.kind)
        if q.color is not UNSET:
            found = found.where(SupplyLatest.color == q.color)
        if q.max_percent is not UNSET:
            found = found.where(
                SupplyLatest.state.in_(("low", "empty")) | (SupplyLatest.percent <= q.max_percent)
            )
        if cursor is not None:
            device_id, key = cursor
            found = found.where(
                (SupplyLatest.device > device_id)
                | ((SupplyLatest.device == device_id) & (SupplyLatest.key > key))
            )
        rows = list(found.order_by(SupplyLatest.device, SupplyLatest.key).limit(q.limit + 1))
    more = len(rows) > q.limit
    page = cast("list[_SupplyRow]", rows[: q.limit])
    return SupplyList(
        items=[
            DeviceSupply(device_id=r.device_id, customer=r.customer_name, **_supply(r, call.settings))
            for r in page
        ],
        next_after=encode_cursor(page[-1].device_id, page[-1].key) if more else None,
    )


ENDPOINTS = [
    Endpoint(
        "/supplies",
        "listSupplies",
        "Every supply in scope with its level and days remaining",
        "supplies",
        SupplyList,
        list_supplies,
        query=SuppliesQuery,
        description="Ordered by device and supply; page with `after` (the previous page's `next_after`). "
        "`max_percent` keeps supplies at or below that level and those reported low or empty. "
        "`customer` or `device_id` of another tenant: 404.",
    )
]

__all__ = ["ENDPOINTS", "decode_cursor", "device_supplies", "encode_cursor", "list_supplies"]

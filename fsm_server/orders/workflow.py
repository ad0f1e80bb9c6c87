"""A supply order's life after ingest proposed it: approved -> ordered -> delivered, or ignored
with a reason; the customers' lead times; the list pages and the API read; the ERP's CSV.

Every read and write takes a ``Scoped`` (``fsm_server.scoping``): another tenant's order is
NotFound like a missing one. Who may act is the caller's check (the portal lets dealers and
administrators act, customers read; the CLI is run by an administrator) and it passes who it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import msgspec
import peewee

from fsm_protocol.display import device_name

from ..config import OrdersSection
from ..db.connect import Database, translated
from ..db.models import Customer, Device
from ..errors import NotFound, OrderError
from ..reports.csv import spreadsheet_cell
from ..scoping import Scoped
from . import proposals
from .models import OPEN_STATES, STATES, OrderSettings, SupplyOrder

if TYPE_CHECKING:

    class _ListedOrder(SupplyOrder):  # an order with the names ``_selected`` adds
        customer_name: str
        manufacturer: str | None
        model: str | None
        serial: str | None
        ip: str
        location: str | None


PAGE_SIZE = 50
MAX_REASON = 500
MAX_REF = 100
#: Which states each step starts from.
STEPS: dict[str, tuple[str, ...]] = {
    "approved": ("proposed",),
    "ordered": ("approved",),
    "delivered": ("approved", "ordered"),
    "ignored": ("proposed", "approved"),
}
#: What the list can be narrowed to: one state, or every open or every closed one.
STATE_FILTERS = ("open", "closed", "all", *STATES)


class OrderView(msgspec.Struct, kw_only=True):
    """One supply order as the portal, the API and the CLI show it."""

    id: int
    customer: str
    device_id: int
    device: str  # maker and model
    serial: str | None
    ip: str
    location: str | None
    description: str
    part_number: str | None
    kind: str
    color: str | None
    state: str
    reason: str  # "forecast" or "level"
    lead_days: int
    margin_days: int
    proposed_at: datetime
    percent: float | None
    observed_at: datetime
    empty_at: datetime | None  # the forecast empty date (the newest while open)
    approved_at: datetime | None
    approved_by: str | None
    ordered_at: datetime | None
    ordered_by: str | None
    order_ref: str | None
    delivered_at: datetime | None
    delivered_by: str | None  # None with delivered_at: closed by a detected replacement
    ignored_at: datetime | None
    ignored_by: str | None
    ignore_reason: str | None
    replaced_at: datetime | None
    early_days: float | None  # days before the forecast empty date it was replaced (< 0: after)
    after_approval_days: float | None  # days from approval to the replacement

    def days_left(self, now: datetime) -> float | None:
        """Days from ``now`` to the forecast empty date (None: no forecast)."""
        return None if self.empty_at is None else (self.empty_at - now).total_seconds() / 86400


class OrderFilter(msgspec.Struct, kw_only=True):
    state: str = "open"  # one of STATE_FILTERS
    customer: str = ""
    page: int = 1


class OrderPage(msgspec.Struct, kw_only=True):
    rows: list[OrderView]
    total: int
    page: int
    pages: int
    filter: OrderFilter


class LeadSettings(msgspec.Struct, kw_only=True):
    customer: str
    lead_days: int
    margin_days: int
    own: bool  # False: the server's [orders] defaults
    updated_by: str | None = None
    updated_at: datetime | None = None


def _query(scoped: Scoped) -> peewee.ModelSelect[SupplyOrder]:
    q = (
        SupplyOrder.select(
            SupplyOrder,
            Customer.name.alias("customer_name"),
            Device.manufacturer.alias("manufacturer"),
            Device.model.alias("model"),
            Device.serial.alias("serial"),
            Device.ip.alias("ip"),
            Device.location.alias("location"),
        )
        .join(Customer, on=(SupplyOrder.customer == Customer.id))
        .switch(SupplyOrder)
        .join(Device, on=(SupplyOrder.device == Device.id))
    )
    return scoped.restrict(q, SupplyOrder.customer)


def _state_where(q: peewee.ModelSelect[SupplyOrder], state: str) -> peewee.ModelSelect[SupplyOrder]:
    if state == "open":
        return q.where(SupplyOrder.state.in_(OPEN_STATES))
    if state == "closed":
        return q.where(SupplyOrder.state.not_in(OPEN_STATES))
    if state in STATES:
        return q.where(SupplyOrder.state == state)
    return q


def _view(o: _ListedOrder) -> OrderView:
    return OrderView(
        id=o.id,
        customer=o.customer_name,
        device_id=o.device_id,
        device=device_name(o.manufacturer, o.model),
        serial=o.serial,
        ip=o.ip,
        location=o.location,
        description=o.description,
        part_number=o.part_number,
        kind=o.kind,
        color=o.color,
        state=o.state,
        reason=o.reason,
        lead_days=o.lead_days,
        margin_days=o.margin_days,
        proposed_at=o.proposed_at,
        percent=o.percent,
        observed_at=o.observed_at,
        empty_at=o.empty_at,
        approved_at=o.approved_at,
        approved_by=o.approved_by,
        ordered_at=o.ordered_at,
        ordered_by=o.ordered_by,
        order_ref=o.order_ref,
        delivered_at=o.delivered_at,
        delivered_by=o.delivered_by,
        ignored_at=o.ignored_at,
        ignored_by=o.ignored_by,
        ignore_reason=o.ignore_reason,
        replaced_at=o.replaced_at,
        early_days=o.early_days,
        after_approval_days=o.after_approval_days,
    )


def _views(q: peewee.ModelSelect[SupplyOrder]) -> list[OrderView]:
    return [_view(o) for o in cast("Iterable[_ListedOrder]", q.objects())]


def list_orders(
    scoped: Scoped, *, state: str = "all", customer: str | None = None, limit: int = 100, offset: int = 0
) -> list[OrderView]:
    """Orders in scope (of one customer, in ``state``: one of STATE_FILTERS), newest first."""
    if state not in STATE_FILTERS:
        raise OrderError(f"unknown order state {state!r}", hint=f"use one of {', '.join(STATE_FILTERS)}")
    with translated("cannot list supply orders"):
        q = _state_where(_query(scoped), state)
        if customer:
            q = q.where(Customer.name == customer)
        q = q.order_by(SupplyOrder.proposed_at.desc(), SupplyOrder.id.desc())
        return _views(q.limit(max(0, min(limit, 10_000))).offset(max(0, offset)))


def order_page(scoped: Scoped, f: OrderFilter, *, page_size: int = PAGE_SIZE) -> OrderPage:
    """One page of the orders list: the open ones soonest empty first, the closed newest first."""
    state = f.state if f.state in STATE_FILTERS else "open"
    with translated("cannot list supply orders"):
        q = _state_where(_query(scoped), state)
        if f.customer:
            q = q.where(Customer.name == f.customer)
        total = q.count()
        pages = max(1, -(-total // page_size))
        page = min(max(1, f.page), pages)
        if state in ("open", *OPEN_STATES):
            q = q.order_by(SupplyOrder.empty_at.asc(nulls="LAST"), SupplyOrder.id)
        else:
            q = q.order_by(SupplyOrder.proposed_at.desc(), SupplyOrder.id.desc())
        rows = _views(q.paginate(page, page_size))
    return OrderPage(rows=rows, total=total, page=page, pages=pages, filter=f)


def get_order(scoped: Scoped, order_id: int) -> OrderView:
    """Order ``order_id`` if in scope; NotFound otherwise (another tenant's or none)."""
    with translated(f"cannot read supply order {order_id}"):
        found = _views(_query(scoped).where(SupplyOrder.id == order_id))
    if not found:
        raise NotFound(f"no supply order {order_id}", hint="see the orders list")
    return found[0]


def _step(scoped: Scoped, order_id: int, to: str, changes: dict[peewee.Field, object]) -> OrderView:
    current = get_order(scoped, order_id)
    allowed = STEPS[to]
    if current.state not in allowed:
        raise OrderError(
            f"supply order {order_id} is {current.state}; it can be {to} only when {' or '.join(allowed)}",
            hint="see its state with `fsm-server orders show` or on the Orders page",
        )
    with translated(f"cannot change supply order {order_id}"):
        done = (
            SupplyOrder.update({SupplyOrder.state: to, **changes})
            .where(SupplyOrder.id == order_id, SupplyOrder.state.in_(allowed))
            .execute()
        )
    if not done:  # another user (or a replacement at ingest) changed it in between
        raise OrderError(f"supply order {order_id} changed meanwhile", hint="look at it again")
    return get_order(scoped, order_id)


def _who(by: str) -> str:
    by = by.strip()[:200]
    if not by:
        raise OrderError("who does this is missing", hint="give --by NAME")
    return by


def approve(scoped: Scoped, order_id: int, *, by: str, now: datetime | None = None) -> OrderView:
    """proposed -> approved: the dealer agrees to ship it (it is in the ERP export from now)."""
    return _step(
        scoped,
        order_id,
        "approved",
        {SupplyOrder.approved_at: now or datetime.now(UTC), SupplyOrder.approved_by: _who(by)},
    )


def mark_ordered(
    scoped: Scoped, order_id: int, *, by: str, ref: str = "", now: datetime | None = None
) -> OrderView:
    """approved -> ordered, with the ERP's order number when given."""
    ref = ref.strip()
    if len(ref) > MAX_REF:
        raise OrderError(
            f"the order number is {len(ref)} characters long, more than {MAX_REF}",
            hint="give the ERP's order number",
        )
    return _step(
        scoped,
        order_id,
        "ordered",
        {
            SupplyOrder.ordered_at: now or datetime.now(UTC),
            SupplyOrder.ordered_by: _who(by),
            SupplyOrder.order_ref: ref or None,
        },
    )


def mark_delivered(scoped: Scoped, order_id: int, *, by: str, now: datetime | None = None) -> OrderView:
    """approved or ordered -> delivered by hand (a replacement seen later is still noted on it)."""
    return _step(
        scoped,
        order_id,
        "delivered",
        {SupplyOrder.delivered_at: now or datetime.now(UTC), SupplyOrder.delivered_by: _who(by)},
    )


def ignore(scoped: Scoped, order_id: int, *, by: str, reason: str, now: datetime | None = None) -> OrderView:
    """proposed or approved -> ignored, with why (the supply is not proposed again until replaced)."""
    reason = reason.strip()
    if not reason:
        raise OrderError(
            f"ignoring supply order {order_id} needs a reason",
            hint="say why (customer buys its own, device leaves the contract, ...)",
        )
    if len(reason) > MAX_REASON:
        raise OrderError(
            f"the reason is {len(reason)} characters long, more than {MAX_REASON}", hint="say it shorter"
        )
    return _step(
        scoped,
        order_id,
        "ignored",
        {
            SupplyOrder.ignored_at: now or datetime.now(UTC),
            SupplyOrder.ignored_by: _who(by),
            SupplyOrder.ignore_reason: reason,
        },
    )


# -- lead times ---------------------------------------------------------------------------------


def lead_settings(scoped: Scoped, customer: str, defaults: OrdersSection) -> LeadSettings:
    """``customer``'s lead time and margin (its own, else the server's defaults)."""
    with translated("cannot read the order settings"):
        c = scoped.customer_named(customer)
        row = OrderSettings.get_or_none(OrderSettings.customer == c.id)
    if row is None:
        return LeadSettings(
            customer=customer, lead_days=defaults.lead_days, margin_days=defaults.margin_days, own=False
        )
    return LeadSettings(
        customer=customer,
        lead_days=row.lead_days,
        margin_days=row.margin_days,
        own=True,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def all_lead_settings(scoped: Scoped, defaults: OrdersSection) -> list[LeadSettings]:
    """Every customer in scope with its lead time and margin, by name (one query)."""
    with translated("cannot read the order settings"):
        q = (
            scoped.customers()
            .select(
                Customer.name,
                OrderSettings.lead_days,
                OrderSettings.margin_days,
                OrderSettings.updated_by,
                OrderSettings.updated_at,
            )
            .join(OrderSettings, peewee.JOIN.LEFT_OUTER, on=(OrderSettings.customer == Customer.id))
            .order_by(Customer.name)
            .tuples()
        )
        rows = list(cast("Iterable[tuple[str, int | None, int | None, str | None, datetime | None]]", q))
    return [
        LeadSettings(
            customer=name,
            lead_days=defaults.lead_days if lead is None else lead,
            margin_days=defaults.margin_days if margin is None else margin,
            own=lead is not None,
            updated_by=by,
            updated_at=at,
        )
        for name, lead, margin, by, at in rows
    ]


def _days(what: str, value: int) -> int:
    if not 0 <= value <= 365:
        raise OrderError(f"{what} {value} is out of range", hint="give a number of days from 0 to 365")
    return value


def set_lead(
    scoped: Scoped, customer: str, *, lead_days: int, margin_days: int, by: str, now: datetime | None = None
) -> LeadSettings:
    """Store ``customer``'s own lead time and margin (used by proposals from now on)."""
    lead, margin, who = _days("lead time", lead_days), _days("margin", margin_days), _who(by)
    at = now or datetime.now(UTC)
    with translated("cannot store the order settings"):
        c = scoped.customer_named(customer)
        OrderSettings.insert(
            customer=c.id, lead_days=lead, margin_days=margin, updated_by=who, updated_at=at
        ).on_conflict(
            conflict_target=[OrderSettings.customer],
            update={
                OrderSettings.lead_days: lead,
                OrderSettings.margin_days: margin,
                OrderSettings.updated_by: who,
                OrderSettings.updated_at: at,
            },
        ).execute()
    return LeadSettings(
        customer=customer, lead_days=lead, margin_days=margin, own=True, updated_by=who, updated_at=at
    )


def reset_lead(scoped: Scoped, customer: str, defaults: OrdersSection) -> LeadSettings:
    """Drop ``customer``'s own settings: it takes the server's defaults again."""
    with translated("cannot store the order settings"):
        c = scoped.customer_named(customer)
        OrderSettings.delete().where(OrderSettings.customer == c.id).execute()
    return lead_settings(scoped, customer, defaults)


def rescan(
    scoped: Scoped, db: Database, customer: str, defaults: OrdersSection, *, now: datetime | None = None
) -> tuple[int, int]:
    """Apply the proposal rules to ``customer``'s supplies now, as after its lead time or margin
    changed (the portal and the CLI do); returns (orders proposed, orders closed)."""
    with translated("cannot read the customer"):
        c = scoped.customer_named(customer)
    with translated(f"cannot propose supply orders for {customer!r}"):
        return proposals.scan(db, defaults, now=now or datetime.now(UTC), customer_id=c.id)


# -- the ERP's CSV ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "order_id",
    "customer",
    "part_number",
    "description",
    "kind",
    "color",
    "manufacturer",
    "model",
    "serial",
    "ip",
    "location",
    "percent",
    "empty_by",
    "approved_at",
    "approved_by",
)


def approved_csv(scoped: Scoped, *, customer: str | None = None, batch: int = 500) -> Iterator[str]:
    """Every approved order in scope (of ``customer``), as CSV lines in batches (cells a
    spreadsheet would run as formulas defused), oldest approval first."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    yield out.getvalue()
    last = 0
    with translated("cannot export supply orders"):
        while True:
            q = _query(scoped).where(SupplyOrder.state == "approved", SupplyOrder.id > last)
            if customer:
                q = q.where(Customer.name == customer)
            orders = list(cast("Iterable[_ListedOrder]", q.order_by(SupplyOrder.id).limit(batch).objects()))
            if not orders:
                return
            out.seek(0)
            out.truncate()
            for o in orders:
                w.writerow(
                    [
                        spreadsheet_cell(c)
                        for c in (
                            o.id,
                            o.customer_name,
                            o.part_number or "",
                            o.description,
                            o.kind,
                            o.color or "",
                            o.manufacturer or "",
                            o.model or "",
                            o.serial or "",
                            o.ip,
                            o.location or "",
                            "" if o.percent is None else f"{o.percent:.0f}",
                            "" if o.empty_at is None else o.empty_at.strftime("%Y-%m-%d"),
                            "" if o.approved_at is None else o.approved_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            o.approved_by or "",
                        )
                    ]
                )
            yield out.getvalue()
            last = orders[-1].id


__all__ = [
    "CSV_COLUMNS",
    "PAGE_SIZE",
    "STATE_FILTERS",
    "STEPS",
    "LeadSettings",
    "OrderFilter",
    "OrderPage",
    "OrderView",
    "all_lead_settings",
    "approve",
    "approved_csv",
    "get_order",
    "ignore",
    "lead_settings",
    "list_orders",
    "mark_delivered",
    "mark_ordered",
    "order_page",
    "rescan",
    "reset_lead",
    "set_lead",
]

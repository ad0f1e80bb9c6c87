"""The API's contract: what each endpoint takes (query and path parameters) and answers, as msgspec
Structs. The OpenAPI document is generated from these (``openapi``); the endpoints encode their
answers with them, so the document and the answers cannot drift apart.

Query Structs forbid unknown fields: a misspelt parameter (``?limt=10``) is refused, not ignored.
An optional parameter left out is ``UNSET`` (never None: no text of a query string means "null").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..orders.workflow import OrderView

#: Most items one page holds; the default is smaller.
MAX_LIMIT = 200
DEFAULT_LIMIT = 50

Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT, description=f"items per page (1-{MAX_LIMIT})")]
#: text without control characters (names hold none; PostgreSQL text cannot hold NUL)
TEXT = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT)]
Id = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Cursor = Annotated[
    int, Meta(ge=0, le=2**63 - 1, description="the `next_after` of the previous page (ids increase)")
]


class _Query(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


# --- errors -----------------------------------------------------------------------------------


class Problem(msgspec.Struct, kw_only=True):
    """Why a request was refused: ``error`` says what, ``hint`` what to do."""

    error: str
    hint: str = ""


# --- devices ----------------------------------------------------------------------------------


class DevicesQuery(_Query):
    limit: Limit = DEFAULT_LIMIT
    after: Cursor = 0
    customer: Name | UnsetType = UNSET


class DevicePath(_Query):
    device_id: Id


class DeviceSummary(msgspec.Struct, kw_only=True):
    """A printer of one customer, as the devices list shows it."""

    id: int
    customer: str
    site: str
    client: str  # the fsm-client that reads it
    manufacturer: str | None
    model: str | None
    serial: str | None
    ip: str
    mac: str | None
    hostname: str | None
    location: str | None
    first_seen: datetime
    last_seen: datetime
    #: the newest reading's device status (running, warning, down, testing), or its reachability
    #: when that was not ok (unreachable ...); "unknown" before the first reading
    status: str
    total: int | None  # the newest "total" page counter


class DeviceList(msgspec.Struct, kw_only=True):
    items: list[DeviceSummary]
    #: pass as ``after`` for the next page; null on the last page
    next_after: int | None


class Counter(msgspec.Struct, kw_only=True):
    name: str  # canonical counter name (total, total_black, total_color, copy_black ...)
    value: int
    observed_at: datetime


class Supply(msgspec.Struct, kw_only=True):
    description: str
    kind: str  # toner, drum, waste_toner ... (fsm_protocol.vocabulary)
    color: str | None
    percent: float | None
    state: str  # ok, low, empty, unknown ...
    observed_at: datetime
    replaced_at: datetime | None  # the last replacement seen
    rate_per_day: float | None  # percentage points used per day, fitted since the last replacement
    days_remaining: float | None  # null: not enough history, or the level is not falling


class Alert(msgspec.Struct, kw_only=True):
    code: str
    severity: str
    description: str
    source: str  # "alert" (prtAlertTable) or "condition" (hrPrinterDetectedErrorState)
    since: datetime
    acked_by: str | None
    acked_at: datetime | None


class DeviceDetail(DeviceSummary, kw_only=True):
    """One device with its newest counters, supplies and open alerts."""

    firmware: str | None
    pmd: str | None
    printer_status: str | None
    counters: list[Counter]
    supplies: list[Supply]
    alerts: list[Alert]


# --- supplies ---------------------------------------------------------------------------------


class SuppliesQuery(_Query):
    limit: Limit = DEFAULT_LIMIT
    after: Annotated[
        str,
        Meta(
            pattern=r"^([0-9]{1,18}:[^\x00]*)?$",
            max_length=600,
            description="the `next_after` of the previous page: `DEVICE_ID:SUPPLY_KEY`",
        ),
    ] = ""
    customer: Name | UnsetType = UNSET
    device_id: Id | UnsetType = UNSET
    kind: Annotated[str, Meta(min_length=1, max_length=64, pattern=TEXT)] | UnsetType = UNSET
    color: Annotated[str, Meta(min_length=1, max_length=32, pattern=TEXT)] | UnsetType = UNSET
    #: supplies at or below this level, or reported low or empty
    max_percent: Annotated[float, Meta(ge=0, le=100)] | UnsetType = UNSET


class DeviceSupply(Supply, kw_only=True):
    device_id: int
    customer: str


class SupplyList(msgspec.Struct, kw_only=True):
    items: list[DeviceSupply]
    next_after: str | None


# --- alerts -----------------------------------------------------------------------------------


class AlertsQuery(_Query):
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="devices per page")] = DEFAULT_LIMIT
    after: Cursor = 0
    customer: Name | UnsetType = UNSET


class DeviceAlert(Alert, kw_only=True):
    device_id: int
    customer: str
    serial: str | None


class AlertList(msgspec.Struct, kw_only=True):
    """The open alerts (in each device's newest reading) of one page of devices."""

    items: list[DeviceAlert]
    next_after: int | None


# --- meters -----------------------------------------------------------------------------------


class MetersQuery(_Query):
    customer: Name
    #: the period's first day (UTC); without it, the customer's last complete billing period
    start: date | UnsetType = UNSET
    months: Annotated[
        int, Meta(ge=1, le=12, description="the period's length in calendar months from `start`")
    ] = 1
    limit: Annotated[int, Meta(ge=1, le=1000, description="meters per page (1-1000)")] = 500
    after: Annotated[int, Meta(ge=0, le=10_000_000, description="meters to skip (`next_after`)")] = 0


class Meter(msgspec.Struct, kw_only=True):
    """Start and end meter of one counter of one device over the period, and the pages between."""

    device_id: int
    serial: str | None
    counter: str  # canonical name
    meter: str  # the ERP's name ([reports] meter_names), else the canonical one
    start_at: datetime
    start_value: int
    end_at: datetime
    end_value: int
    usage: int
    flags: list[str]  # added, removed, reset, wrap, jump, device_swap


class MeterList(msgspec.Struct, kw_only=True):
    customer: str
    start: datetime
    end: datetime
    items: list[Meter]
    next_after: int | None


class PeriodsQuery(_Query):
    limit: Limit = DEFAULT_LIMIT
    after: Cursor = 0
    customer: Name | UnsetType = UNSET
    state: Annotated[str, Meta(pattern="^(collected|validated|approved|exported)$")] | UnsetType = UNSET


class PeriodPath(_Query):
    period_id: Id


class Period(msgspec.Struct, kw_only=True):
    """A customer's billing period and where it is: collected, validated, approved, exported."""

    id: int
    customer: str
    start: datetime
    end: datetime
    state: str
    collected_at: datetime
    validated_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    exported_at: datetime | None


class Source(msgspec.Struct, kw_only=True):
    """The sealed report a billed number came from."""

    client: str
    seq: int
    sha256: str


class BilledMeter(msgspec.Struct, kw_only=True):
    """A meter as billed: the collected numbers, and a dealer's correction's when there is one."""

    id: int
    device_id: int
    counter: str
    start_at: datetime
    end_at: datetime
    collected_start: int
    collected_end: int
    collected_usage: int
    start_value: int
    end_value: int
    usage: int
    flags: list[str]
    corrected: bool
    excluded: bool
    start_source: Source
    end_source: Source


class PeriodList(msgspec.Struct, kw_only=True):
    items: list[Period]
    next_after: int | None


class PeriodDetail(Period, kw_only=True):
    meters: list[BilledMeter]


# --- supply orders ----------------------------------------------------------------------------


class OrdersQuery(_Query):
    limit: Limit = DEFAULT_LIMIT
    after: Annotated[int, Meta(ge=0, le=10_000_000, description="orders to skip (`next_after`)")] = 0
    customer: Name | UnsetType = UNSET
    #: one state, or every open (proposed, approved, ordered) or closed (delivered, ignored) one
    state: Literal["all", "open", "closed", "proposed", "approved", "ordered", "delivered", "ignored"] = "all"


class OrderPath(_Query):
    order_id: Id


class Order(OrderView, kw_only=True):
    """A supply order (docs/orders.md): proposed from the forecast or the level, then approved,
    ordered, delivered (by a person, or closed by a detected replacement), or ignored with a reason."""


class OrderList(msgspec.Struct, kw_only=True):
    """Orders newest proposed first."""

    items: list[Order]
    next_after: int | None


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Alert",
    "AlertList",
    "AlertsQuery",
    "BilledMeter",
    "Counter",
    "DeviceAlert",
    "DeviceDetail",
    "DeviceList",
    "DevicePath",
    "DeviceSummary",
    "DeviceSupply",
    "DevicesQuery",
    "Meter",
    "MeterList",
    "MetersQuery",
    "Order",
    "OrderList",
    "OrderPath",
    "OrdersQuery",
    "Period",
    "PeriodDetail",
    "PeriodList",
    "PeriodPath",
    "PeriodsQuery",
    "Problem",
    "SuppliesQuery",
    "Supply",
    "SupplyList",
]

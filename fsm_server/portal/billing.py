"""The billing pages' data: periods of the customers in scope, one period's meters grouped per
device, and the workflow steps (validate, correct, exclude, approve, export) on a period or meter
in scope only. The steps are ``fsm_server.billing``'s; this module adds the scope check (another
tenant's period or meter is NotFound, like one that does not exist) and the export as one zip.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from datetime import datetime
from typing import cast

import msgspec
import peewee

from fsm_protocol.display import device_name
from fsm_protocol.keys import SigningKey

from ..billing import export, workflow
from ..billing.models import BillingCorrection, BillingMeter, BillingPeriod, BillingPlan
from ..billing.periods import Plan
from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import Customer, Dealer, Device, Site
from ..errors import NotFound
from ..scoping import Scoped

#: Devices on one page of a period (each with its meters).
DEVICES_PER_PAGE = 100


class PeriodRow(msgspec.Struct, kw_only=True):
    """A period in the list: its state and how many meters still stop its approval."""

    id: int
    start: datetime
    end: datetime
    state: str
    meters: int
    to_settle: int
    approved_by: str | None
    exported_at: datetime | None


class CustomerPeriods(msgspec.Struct, kw_only=True):
    customer: str
    plan: Plan
    periods: list[PeriodRow]


class DeviceLabel(msgspec.Struct, kw_only=True):
    id: int
    name: str
    serial: str | None
    ip: str
    site: str


class DeviceMeters(msgspec.Struct, kw_only=True):
    device: DeviceLabel
    meters: list[workflow.MeterView]


class PeriodPage(msgspec.Struct, kw_only=True):
    """One page of a period: its tally, and the meters of the page's devices only (a period of
    10,000 devices is 100 pages)."""

    period: workflow.PeriodView  # with its tally, without its meters
    devices: list[DeviceMeters]  # the page's, by site, device name, serial
    listed: int  # the devices listed over all pages
    page: int
    pages: int
    settle_flags: list[tuple[str, int]]  # (flag, meters still to settle with it)
    dealer: str | None  # the customer's dealer: whose staff reads the audit entries


def _period_query(scoped: Scoped, *fields: peewee.ColumnBase) -> peewee.ModelSelect[BillingPeriod]:
    return scoped.restrict(BillingPeriod.select(*fields), BillingPeriod.customer)


def period_in_scope(scoped: Scoped, period_id: int) -> int:
    """``period_id`` when it is a period of a customer in scope; NotFound otherwise."""
    with translated(f"cannot read billing period {period_id}"):
        found = _period_query(scoped, BillingPeriod.id).where(BillingPeriod.id == period_id).exists()
    if not found:
        raise NotFound(f"no billing period {period_id}", hint="see the billing page")
    return period_id


def meter_period(scoped: Scoped, meter_id: int) -> int:
    """The period of meter ``meter_id`` when it is in scope; NotFound otherwise."""
    with translated(f"cannot read billed meter {meter_id}"):
        row = (
            scoped.restrict(
                BillingMeter.select(BillingMeter.id, BillingMeter.period).join(BillingPeriod),
                BillingPeriod.customer,
            )
            .where(BillingMeter.id == meter_id)
            .first()
        )
    if row is None:
        raise NotFound(f"no billed meter {meter_id}", hint="see the billing page")
    return int(row.period_id)


def customer_periods(scoped: Scoped) -> list[CustomerPeriods]:
    """Every customer in scope (by name) with its plan and its periods, newest first."""
    with translated("cannot list billing periods"):
        customers = list(scoped.customers().order_by(Customer.name))
        settled = BillingMeter.excluded | BillingMeter.id.in_(
            BillingCorrection.select(BillingCorrection.meter)
        )
        open_flag = peewee.Case(
            None, [((BillingMeter.flags != peewee.Value("[]", converter=False)) & ~settled, 1)], 0
        )
        counted = (
            _period_query(
                scoped, BillingPeriod.id, peewee.fn.COUNT(BillingMeter.id), peewee.fn.SUM(open_flag)
            )
            .join(BillingMeter, peewee.JOIN.LEFT_OUTER)
            .group_by(BillingPeriod.id)
            .tuples()
        )
        counts = {
            pid: (n, int(open_ or 0))
            for pid, n, open_ in cast("Iterable[tuple[int, int, int | None]]", counted)
        }
        by_customer: dict[int, list[PeriodRow]] = {}
        for p in _period_query(scoped).order_by(BillingPeriod.start.desc()):
            n, open_ = counts.get(p.id, (0, 0))
            by_customer.setdefault(p.customer_id, []).append(
                PeriodRow(
                    id=p.id,
                    start=p.start,
                    end=p.end,
                    state=p.state,
                    meters=n,
                    to_settle=open_,
                    approved_by=p.approved_by,
                    exported_at=p.exported_at,
                )
            )
        planned = scoped.restrict(
            BillingPlan.select(
                BillingPlan.customer, BillingPlan.cadence, BillingPlan.anchor_day, BillingPlan.anchor_month
            ),
            BillingPlan.customer,
        ).tuples()
        plans = {
            customer_id: Plan(
                cadence="quarterly" if cadence == "quarterly" else "monthly",
                anchor_day=day,
                anchor_month=month,
            )
            for customer_id, cadence, day, month in cast("Iterable[tuple[int, str, int, int]]", planned)
        }
    return [
        CustomerPeriods(customer=c.name, plan=plans.get(c.id, Plan()), periods=by_customer.get(c.id, []))
        for c in customers
    ]


#: A device's name as ``device_name`` makes it, in SQL (the period page sorts by it): the model,
#: after the maker unless the model begins with the maker's name and a word break (the maker's
#: other names, MAKER_NAMES, are not looked for here: such a device sorts as if named with both).
_MAKER = peewee.fn.TRIM(peewee.fn.COALESCE(Device.manufacturer, ""))
_MODEL = peewee.fn.TRIM(peewee.fn.COALESCE(Device.model, ""))
_NAME = peewee.Case(
    None,
    [
        (_MODEL == "", _MAKER),
        (_MAKER == "", _MODEL),
        (
            (
                peewee.fn.LOWER(peewee.fn.SUBSTR(_MODEL, 1, peewee.fn.LENGTH(_MAKER)))
                == peewee.fn.LOWER(_MAKER)
            )
            & peewee.fn.SUBSTR(_MODEL, peewee.fn.LENGTH(_MAKER) + 1, 1).in_(["", " ", "-", "_", "/"]),
            _MODEL,
        ),
    ],
    _MAKER.concat(" ").concat(_MODEL),
)


def _listed_meters(
    scoped: Scoped, period_id: int, flagged_only: bool, *fields: peewee.ColumnBase
) -> peewee.ModelSelect[BillingPeriod]:
    """The meters of period ``period_id`` in scope (only those flagged, corrected or excluded with
    ``flagged_only``), ``fields`` selected."""
    q = (
        _period_query(scoped, *fields)
        .join(BillingMeter, on=(BillingMeter.period == BillingPeriod.id))
        .where(BillingPeriod.id == period_id)
    )
    if flagged_only:
        q = q.where(
            (BillingMeter.flags != peewee.Value("[]", converter=False))
            | BillingMeter.excluded
            | BillingMeter.id.in_(BillingCorrection.select(BillingCorrection.meter))
        )
    return q


def _page_devices(scoped: Scoped, period_id: int, flagged_only: bool, page: int) -> list[DeviceLabel]:
    """The devices of page ``page`` (from 1) of the period, by site, device name, serial; a device
    is named while it is the period's customer's."""
    q = (
        _listed_meters(
            scoped,
            period_id,
            flagged_only,
            BillingMeter.device,
            Device.manufacturer,
            Device.model,
            Device.serial,
            Device.ip,
            Site.name,
        )
        .join(
            Device,
            peewee.JOIN.LEFT_OUTER,
            on=((Device.id == BillingMeter.device) & (Device.customer == BillingPeriod.customer)),
        )
        .join(Site, peewee.JOIN.LEFT_OUTER, on=(Device.site == Site.id))
        .group_by(BillingMeter.device, Device.manufacturer, Device.model, Device.serial, Device.ip, Site.name)
        .order_by(
            peewee.fn.COALESCE(Site.name, ""),
            _NAME,
            peewee.fn.COALESCE(Device.serial, ""),
            BillingMeter.device,
        )
        .paginate(page, DEVICES_PER_PAGE)
        .tuples()
    )
    return [
        DeviceLabel(id=d, name=device_name(maker, model), serial=serial, ip=ip or "", site=site or "")
        for d, maker, model, serial, ip, site in cast(
            "Iterable[tuple[int, str | None, str | None, str | None, str | None, str | None]]", q
        )
    ]


def period_page(scoped: Scoped, period_id: int, *, flagged_only: bool = False, page: int = 1) -> PeriodPage:
    """Page ``page`` (from 1, kept within the pages there are) of a period in scope: the meters of
    its devices grouped per device, only the devices with a meter flagged, corrected or excluded
    with ``flagged_only``; NotFound for a period out of scope. The queries are the same whatever
    the period's size."""
    view = workflow.summary(period_in_scope(scoped, period_id))
    listed = (view.tally or workflow.Tally()).devices
    if flagged_only:
        with translated("cannot count the period's devices"):
            listed = int(
                _listed_meters(
                    scoped, period_id, True, peewee.fn.COUNT(peewee.fn.DISTINCT(BillingMeter.device))
                ).scalar()
                or 0
            )
    pages = max(1, -(-listed // DEVICES_PER_PAGE))
    number = min(max(1, page), pages)
    with translated("cannot read the period's devices"):
        labels = _page_devices(scoped, period_id, flagged_only, number)
    groups: dict[int, list[workflow.MeterView]] = {d.id: [] for d in labels}
    for m in workflow.device_meters(period_id, list(groups)):
        groups[m.device_id].append(m)
    return PeriodPage(
        period=view,
        devices=[DeviceMeters(device=d, meters=groups[d.id]) for d in labels],
        listed=listed,
        page=number,
        pages=pages,
        settle_flags=workflow.settle_flags(period_id),
        dealer=period_dealer(scoped, period_id),
    )


def period_dealer(scoped: Scoped, period_id: int) -> str | None:
    """The dealer of the period's customer (None: an administrators' customer): audit entries about
    the period are for that dealer's staff to read."""
    with translated("cannot read the period's dealer"):
        name = (
            _period_query(scoped, Dealer.name)
            .join(Customer, on=(BillingPeriod.customer == Customer.id))
            .join(Dealer, on=(Customer.dealer == Dealer.id))
            .where(BillingPeriod.id == period_id)
            .scalar()
        )
    return str(name) if name is not None else None


def summary(scoped: Scoped, period_id: int) -> workflow.PeriodView:
    """A period in scope with its tally, without its meters (NotFound otherwise)."""
    return workflow.summary(period_in_scope(scoped, period_id))


def exclude_to_settle(scoped: Scoped, period_id: int, by: str, note: str, flags: list[str]) -> int:
    """How many of a period's meters still to settle (with one of ``flags``, when given) were excluded."""
    return workflow.exclude_to_settle(period_in_scope(scoped, period_id), by, note, flags=flags)


def validate(scoped: Scoped, period_id: int, by: str) -> workflow.PeriodView:
    return workflow.validate(period_in_scope(scoped, period_id), by)


def approve(scoped: Scoped, period_id: int, by: str) -> workflow.PeriodView:
    return workflow.approve(period_in_scope(scoped, period_id), by)


def correct(
    scoped: Scoped,
    meter_id: int,
    by: str,
    note: str,
    *,
    start_value: int | None = None,
    end_value: int | None = None,
    usage: int | None = None,
) -> tuple[int, workflow.MeterView]:
    """(period id, the meter as now billed) after storing the correction beside the original."""
    period_id = meter_period(scoped, meter_id)
    meter = workflow.correct(meter_id, by, note, start_value=start_value, end_value=end_value, usage=usage)
    return period_id, meter


def exclude(scoped: Scoped, meter_id: int, by: str, note: str) -> tuple[int, workflow.MeterView]:
    period_id = meter_period(scoped, meter_id)
    return period_id, workflow.exclude(meter_id, by, note)


def export_zip(
    scoped: Scoped, period_id: int, signer: SigningKey, settings: ReportsSection | None = None
) -> tuple[str, bytes]:
    """(file name, zip) of an approved period in scope: the CSV and its signed manifest, named so
    that ``fsm-server billing verify`` finds the one beside the other once unpacked."""
    csv_text, manifest = export.build(period_in_scope(scoped, period_id), signer, settings)
    view = workflow.period(period_id)
    stem = f"billing-{period_id}-{view.start:%Y%m%d}-{view.end:%Y%m%d}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{stem}.csv", csv_text.encode())
        z.writestr(f"{stem}.csv{export.MANIFEST_SUFFIX}", manifest)
    return f"{stem}.zip", out.getvalue()


__all__ = [
    "DEVICES_PER_PAGE",
    "CustomerPeriods",
    "DeviceLabel",
    "DeviceMeters",
    "PeriodPage",
    "PeriodRow",
    "approve",
    "correct",
    "customer_periods",
    "exclude",
    "exclude_to_settle",
    "export_zip",
    "meter_period",
    "period_dealer",
    "period_in_scope",
    "period_page",
    "summary",
    "validate",
]

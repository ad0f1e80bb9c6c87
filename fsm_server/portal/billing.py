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
    period: workflow.PeriodView
    devices: list[DeviceMeters]
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


def period_page(scoped: Scoped, period_id: int) -> PeriodPage:
    """A period in scope with its meters grouped per device (NotFound otherwise)."""
    view = workflow.show(period_in_scope(scoped, period_id))
    ids = sorted({m.device_id for m in view.meters})
    labels: dict[int, DeviceLabel] = {}
    with translated("cannot read the period's devices"):
        for i in range(0, len(ids), 1000):
            q = (
                scoped.devices(
                    Device.id,
                    Device.manufacturer,
                    Device.model,
                    Device.serial,
                    Device.ip,
                    Site.name.alias("site_name"),
                )
                .join(Site, peewee.JOIN.LEFT_OUTER, on=(Device.site == Site.id))
                .where(Device.id.in_(ids[i : i + 1000]))
            )
            for d in q.objects():
                labels[d.id] = DeviceLabel(
                    id=d.id,
                    name=device_name(d.manufacturer, d.model),
                    serial=d.serial,
                    ip=d.ip,
                    site=getattr(d, "site_name", None) or "",
                )
    groups: dict[int, list[workflow.MeterView]] = {}
    for m in view.meters:
        groups.setdefault(m.device_id, []).append(m)
    devices = [
        DeviceMeters(
            device=labels.get(d, DeviceLabel(id=d, name="", serial=None, ip="", site="")), meters=meters
        )
        for d, meters in groups.items()
    ]
    devices.sort(key=lambda g: (g.device.site, g.device.name, g.device.serial or "", g.device.id))
    return PeriodPage(period=view, devices=devices, dealer=period_dealer(scoped, period_id))


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

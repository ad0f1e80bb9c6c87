"""``/meters`` (start and end meter of each counter of a customer's devices over a period, computed
by the meters report) and ``/billing/periods`` (the billing core's periods as collected, corrected
and approved, each number with the sealed report it came from)."""

from __future__ import annotations

import calendar
import itertools
from datetime import MAXYEAR, UTC, datetime
from typing import TYPE_CHECKING, cast

from msgspec import UNSET

from ..billing.models import BillingPeriod
from ..billing.periods import last_complete_period
from ..billing.workflow import PeriodView, plan_of, show
from ..db.connect import translated
from ..db.models import Customer
from ..errors import NotFound
from ..reports.meters import meter_rows
from ..reports.scope import Scope
from .endpoint import Call, Endpoint
from .schemas import (
    BilledMeter,
    Meter,
    MeterList,
    MetersQuery,
    Period,
    PeriodDetail,
    PeriodList,
    PeriodPath,
    PeriodsQuery,
    Source,
)

if TYPE_CHECKING:

    class _PeriodRow(BillingPeriod):  # with its customer's name (``list_periods``)
        customer_name: str


def _period(q: MetersQuery, customer: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, start + months) from the query; without ``start`` the customer's last complete
    billing period. A period running past the calendar's end stops there."""
    if q.start is UNSET:
        return last_complete_period(plan_of(customer), now)
    start = datetime(q.start.year, q.start.month, q.start.day, tzinfo=UTC)
    index = q.start.year * 12 + q.start.month - 1 + q.months
    year, month = divmod(index, 12)
    if year > MAXYEAR:
        return start, datetime.max.replace(tzinfo=UTC)
    last = calendar.monthrange(year, month + 1)[1]
    return start, datetime(year, month + 1, min(q.start.day, last), tzinfo=UTC)


def list_meters(call: Call) -> MeterList:
    q: MetersQuery = call.query
    customer = call.scoped.customer_named(q.customer).name  # NotFound: another tenant's, or none
    start, end = _period(q, customer, call.now)
    scope = Scope(start=start, end=end, now=call.now, customer=customer)
    # meter_rows computes a chunk of devices at a time: rows past this page are never computed
    rows = list(itertools.islice(meter_rows(call.db, scope, call.settings), q.after, q.after + q.limit + 1))
    more = len(rows) > q.limit
    return MeterList(
        customer=customer,
        start=start,
        end=end,
        items=[
            Meter(
                device_id=r.device.id,
                serial=r.device.serial,
                counter=r.counter,
                meter=r.meter,
                start_at=r.start_at,
                start_value=r.start_value,
                end_at=r.end_at,
                end_value=r.end_value,
                usage=r.usage,
                flags=list(r.flags),
            )
            for r in rows[: q.limit]
        ],
        next_after=q.after + q.limit if more else None,
    )


def _period_fields(p: PeriodView) -> dict[str, object]:
    return {
        "id": p.id,
        "customer": p.customer,
        "start": p.start,
        "end": p.end,
        "state": p.state,
        "collected_at": p.collected_at,
        "validated_by": p.validated_by,
        "approved_by": p.approved_by,
        "approved_at": p.approved_at,
        "exported_at": p.exported_at,
    }


def list_periods(call: Call) -> PeriodList:
    q: PeriodsQuery = call.query
    scoped = call.scoped
    with translated("cannot list billing periods"):
        found = scoped.restrict(
            BillingPeriod.select(BillingPeriod, Customer.name.alias("customer_name")).join(Customer),
            BillingPeriod.customer,
        ).where(BillingPeriod.id > q.after)
        if q.customer is not UNSET:
            found = found.where(BillingPeriod.customer == scoped.customer_named(q.customer).id)
        if q.state is not UNSET:
            found = found.where(BillingPeriod.state == q.state)
        rows = cast("list[_PeriodRow]", list(found.order_by(BillingPeriod.id).limit(q.limit + 1).objects()))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return PeriodList(
        items=[
            Period(
                id=p.id,
                customer=p.customer_name,
                start=p.start,
                end=p.end,
                state=p.state,
                collected_at=p.collected_at,
                validated_by=p.validated_by,
                approved_by=p.approved_by,
                approved_at=p.approved_at,
                exported_at=p.exported_at,
            )
            for p in rows
        ],
        next_after=rows[-1].id if more else None,
    )


def one_period(call: Call) -> PeriodDetail:
    p: PeriodPath = call.path
    with translated(f"cannot read billing period {p.period_id}"):
        visible = call.scoped.restrict(
            BillingPeriod.select(BillingPeriod.id).where(BillingPeriod.id == p.period_id),
            BillingPeriod.customer,
        ).exists()
    if not visible:
        raise NotFound(f"no billing period {p.period_id}", hint="see /api/v1/billing/periods")
    view = show(p.period_id)
    return PeriodDetail(
        **_period_fields(view),  # type: ignore[arg-type]
        meters=[
            BilledMeter(
                id=m.id,
                device_id=m.device_id,
                counter=m.counter,
                start_at=m.start_at,
                end_at=m.end_at,
                collected_start=m.collected_start,
                collected_end=m.collected_end,
                collected_usage=m.collected_usage,
                start_value=m.start_value,
                end_value=m.end_value,
                usage=m.usage,
                flags=m.flags,
                corrected=bool(m.corrections),
                excluded=m.excluded,
                start_source=Source(
                    client=m.start_source[0], seq=m.start_source[1], sha256=m.start_source[2]
                ),
                end_source=Source(client=m.end_source[0], seq=m.end_source[1], sha256=m.end_source[2]),
            )
            for m in view.meters
        ],
    )


ENDPOINTS = [
    Endpoint(
        "/meters",
        "listMeters",
        "Start and end meters and usage of one customer's devices over a period",
        "meters",
        MeterList,
        list_meters,
        query=MetersQuery,
        description='Computed from the readings as the meters report does (docs/reports.md, "Meters"). '
        "From `start` for `months` calendar months; without `start`, the customer's last complete "
        "billing period. "
        "Page with `after` (the previous page's `next_after`). Another tenant's customer: 404.",
    ),
    Endpoint(
        "/billing/periods",
        "listBillingPeriods",
        "Billing periods in scope, in id order",
        "billing",
        PeriodList,
        list_periods,
        query=PeriodsQuery,
    ),
    Endpoint(
        "/billing/periods/{period_id}",
        "getBillingPeriod",
        "One billing period with its meters as billed and where each number came from",
        "billing",
        PeriodDetail,
        one_period,
        path_params=PeriodPath,
        description="404 for a period that does not exist or is another tenant's.",
    ),
]

__all__ = ["ENDPOINTS", "list_meters", "list_periods", "one_period"]

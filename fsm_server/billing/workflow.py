"""A billing period's life: collected -> validated (by the customer, optional) -> approved (by the
dealer) -> exported. Corrections are stored beside the collected numbers with a note; a flagged
meter blocks approval until it is corrected or excluded. Nothing here checks who may act: the
callers (the CLI run by an administrator, the portal after re-authentication) do, and pass who it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

import msgspec

from ..config import ReportsSection
from ..db.connect import Database, translated
from ..db.loader import CounterPolicy
from ..db.models import Customer
from ..errors import BillingError, NotFound
from ..reports.scope import bound_database
from .collect import collect
from .models import BillingCorrection, BillingMeter, BillingPeriod, BillingPlan
from .periods import Plan, last_complete_period

STATES = ("collected", "validated", "approved", "exported")
MAX_NOTE = 2000


class MeterView(msgspec.Struct, kw_only=True):
    """A meter as billed: the collected numbers, and the newest correction's when there is one."""

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
    report_flags: list[str]
    start_source: tuple[str, int, str]  # (client, seq, sha256) of the envelope
    end_source: tuple[str, int, str]
    corrections: list[tuple[datetime, str, str]]  # (when, by, note), oldest first
    excluded: bool
    exclude_note: str | None

    @property
    def blocking(self) -> bool:
        """Flagged and neither corrected nor excluded: approval waits for it."""
        return bool(self.flags) and not self.corrections and not self.excluded


class PeriodView(msgspec.Struct, kw_only=True):
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
    meters: list[MeterView] = msgspec.field(default_factory=list)

    @property
    def blocking(self) -> list[MeterView]:
        return [m for m in self.meters if m.blocking]


def _customer(name: str) -> Customer:
    c = Customer.get_or_none(Customer.name == name)
    if c is None:
        raise NotFound(f"no customer named {name!r}", hint="see `fsm-server customers list`")
    return c


def plan_of(customer: str) -> Plan:
    """The customer's billing plan (monthly from the 1st when none was set)."""
    with translated("cannot read the billing plan"):
        row = BillingPlan.get_or_none(BillingPlan.customer == _customer(customer))
    if row is None:
        return Plan()
    return Plan(
        cadence="quarterly" if row.cadence == "quarterly" else "monthly",
        anchor_day=row.anchor_day,
        anchor_month=row.anchor_month,
    )


def set_plan(customer: str, plan: Plan) -> None:
    with translated("cannot store the billing plan"):
        c = _customer(customer)
        BillingPlan.insert(
            customer=c, cadence=plan.cadence, anchor_day=plan.anchor_day, anchor_month=plan.anchor_month
        ).on_conflict(
            conflict_target=[BillingPlan.customer],
            update={
                BillingPlan.cadence: plan.cadence,
                BillingPlan.anchor_day: plan.anchor_day,
                BillingPlan.anchor_month: plan.anchor_month,
            },
        ).execute()


def collect_period(
    db: Database,
    customer: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    policy: CounterPolicy | None = None,
) -> PeriodView:
    """Collect (or collect again, while nothing was validated, corrected or excluded) the
    customer's period; by default the last complete one of its plan."""
    now = now or datetime.now(UTC)
    if start is None or end is None:
        start, end = last_complete_period(plan_of(customer), now)
    if end <= start:
        raise BillingError(f"period end {end:%Y-%m-%d} is not after its start {start:%Y-%m-%d}")
    if end > now:
        raise BillingError(
            f"the period {start:%Y-%m-%d} - {end:%Y-%m-%d} has not ended yet",
            hint="collect a period once its end has passed",
        )
    found = collect(db, customer, start, end, now, settings, policy)
    with translated("cannot store the billing period"), db.peewee.atomic():
        c = _customer(customer)
        period = BillingPeriod.get_or_none(BillingPeriod.customer == c, BillingPeriod.start == start)
        if period is not None:
            touched = (
                BillingMeter.select()
                .where(BillingMeter.period == period)
                .where(
                    BillingMeter.excluded
                    | BillingMeter.id.in_(BillingCorrection.select(BillingCorrection.meter))
                )
                .exists()
            )
            if period.state != "collected" or touched:
                raise BillingError(
                    f"the period of {customer} from {start:%Y-%m-%d} is {period.state} and was worked on; "
                    "it is not collected again",
                    hint="its corrections and exclusions stay as they are",
                )
            if period.end != end:
                raise BillingError(
                    f"{customer} already has a period from {start:%Y-%m-%d} to {period.end:%Y-%m-%d}"
                )
            BillingMeter.delete().where(BillingMeter.period == period).execute()
            period.collected_at = now
            period.save()
        else:
            period = BillingPeriod.create(
                customer=c, start=start, end=end, state="collected", collected_at=now
            )
        rows = [
            {
                "period": period.id,
                "device": m.row.device.id,
                "counter": m.row.counter,
                "start_at": m.row.start_at,
                "start_value": m.row.start_value,
                "end_at": m.row.end_at,
                "end_value": m.row.end_value,
                "usage": m.row.usage,
                "flags": m.flags,
                "report_flags": m.row.flags,
                "start_client": m.start.client,
                "start_seq": m.start.seq,
                "start_sha256": m.start.sha256,
                "end_client": m.end.client,
                "end_seq": m.end.seq,
                "end_sha256": m.end.sha256,
            }
            for m in found
        ]
        for i in range(0, len(rows), 500):
            BillingMeter.insert_many(rows[i : i + 500]).execute()
    return show(period.id)


def periods(customer: str | None = None) -> list[PeriodView]:
    """Every period (of ``customer``), newest first, without their meters."""
    with translated("cannot list billing periods"):
        q = BillingPeriod.select(BillingPeriod, Customer.name).join(Customer)
        if customer is not None:
            q = q.where(Customer.name == customer)
        return [
            _period_view(p, p.customer.name) for p in q.order_by(BillingPeriod.start.desc(), Customer.name)
        ]


def show(period_id: int) -> PeriodView:
    """A period with its meters as billed."""
    with translated("cannot read the billing period"):
        p = _period(period_id)
        view = _period_view(p, p.customer.name)
        corrections: dict[int, list[BillingCorrection]] = {}
        for c in (
            BillingCorrection.select()
            .join(BillingMeter)
            .where(BillingMeter.period == p)
            .order_by(BillingCorrection.id)
        ):
            corrections.setdefault(c.meter_id, []).append(c)
        for m in (
            BillingMeter.select()
            .where(BillingMeter.period == p)
            .order_by(BillingMeter.device, BillingMeter.counter)
        ):
            view.meters.append(_meter_view(m, corrections.get(m.id, [])))
    return view


def validate(period_id: int, by: str, *, now: datetime | None = None) -> PeriodView:
    """The customer confirms the collected meters (optional: a dealer may approve without it)."""
    with _changing(period_id, ("collected",), "validated") as p:
        p.validated_by, p.validated_at = by, now or datetime.now(UTC)
    return show(period_id)


def approve(period_id: int, by: str, *, now: datetime | None = None) -> PeriodView:
    """The dealer approves the period for export: refused while a flagged meter is neither
    corrected nor excluded."""
    blocking = show(period_id).blocking
    if blocking:
        names = ", ".join(
            f"meter {m.id} (device {m.device_id} {m.counter}: {' '.join(m.flags)})" for m in blocking[:5]
        )
        more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
        raise BillingError(
            f"period {period_id} has {len(blocking)} flagged meter(s) to settle: {names}{more}",
            hint="correct each with `fsm-server billing correct METER --note ...` or exclude it "
            "with `fsm-server billing exclude METER --note ...`",
        )
    with _changing(period_id, ("collected", "validated"), "approved") as p:
        p.approved_by, p.approved_at = by, now or datetime.now(UTC)
    return show(period_id)


def correct(
    meter_id: int,
    by: str,
    note: str,
    *,
    start_value: int | None = None,
    end_value: int | None = None,
    usage: int | None = None,
    now: datetime | None = None,
) -> MeterView:
    """Store a correction beside the collected meter: the values not given are the billed ones;
    usage defaults to end - start."""
    note = _note(note)
    with translated("cannot store the correction"), _db_atomic():
        m = _meter(meter_id)
        _editable(m.period)
        current = _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )
        start = current.start_value if start_value is None else start_value
        end = current.end_value if end_value is None else end_value
        billed = end - start if usage is None else usage
        for name, value in (("start", start), ("end", end), ("usage", billed)):
            if value < 0:
                raise BillingError(
                    f"a corrected {name} of {value} is negative",
                    hint="give the pages as the device counts them (0 or more)",
                )
        BillingCorrection.create(
            meter=m,
            start_value=start,
            end_value=end,
            usage=billed,
            note=note,
            corrected_by=by,
            corrected_at=now or datetime.now(UTC),
        )
        return _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )


def exclude(meter_id: int, by: str, note: str) -> MeterView:
    """Leave a meter out of the export (kept, with why)."""
    note = _note(note)
    with translated("cannot exclude the meter"), _db_atomic():
        m = _meter(meter_id)
        _editable(m.period)
        m.excluded, m.excluded_by, m.exclude_note = True, by, note
        m.save()
        return _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )


def mark_exported(period_id: int, digest: str, *, now: datetime | None = None) -> None:
    with _changing(period_id, ("approved", "exported"), "exported") as p:
        p.exported_at, p.export_sha256 = now or datetime.now(UTC), digest


# --- helpers ---------------------------------------------------------------------------------


def _db_atomic() -> AbstractContextManager[object]:
    atomic: AbstractContextManager[object] = bound_database().peewee.atomic()
    return atomic


@contextmanager
def _changing(period_id: int, allowed: tuple[str, ...], new: str) -> Iterator[BillingPeriod]:
    with translated("cannot change the billing period"), _db_atomic():
        p = _period(period_id)
        if p.state not in allowed:
            raise BillingError(
                f"period {period_id} is {p.state}; it can become {new} only when {' or '.join(allowed)}"
            )
        yield p
        p.state = new
        p.save()


def _period(period_id: int) -> BillingPeriod:
    p = BillingPeriod.get_or_none(BillingPeriod.id == period_id)
    if p is None:
        raise NotFound(f"no billing period {period_id}", hint="see `fsm-server billing periods`")
    return p


def _meter(meter_id: int) -> BillingMeter:
    m = BillingMeter.get_or_none(BillingMeter.id == meter_id)
    if m is None:
        raise NotFound(f"no billed meter {meter_id}", hint="see `fsm-server billing show PERIOD`")
    return m


def _editable(period: BillingPeriod) -> None:
    if period.state not in ("collected", "validated"):
        raise BillingError(f"period {period.id} is {period.state}: its meters no longer change")


def _note(note: str) -> str:
    note = note.strip()
    if not note:
        raise BillingError(
            "a correction or exclusion needs a note saying why",
            hint="give --note 'board replaced on the 14th, reading from the service report'",
        )
    if len(note) > MAX_NOTE:
        raise BillingError(f"the note has {len(note)} characters; at most {MAX_NOTE}")
    return note


def _period_view(p: BillingPeriod, customer: str) -> PeriodView:
    return PeriodView(
        id=p.id,
        customer=customer,
        start=p.start,
        end=p.end,
        state=p.state,
        collected_at=p.collected_at,
        validated_by=p.validated_by,
        approved_by=p.approved_by,
        approved_at=p.approved_at,
        exported_at=p.exported_at,
    )


def _meter_view(m: BillingMeter, corrections: list[BillingCorrection]) -> MeterView:
    last = corrections[-1] if corrections else None
    return MeterView(
        id=m.id,
        device_id=m.device_id,
        counter=m.counter,
        start_at=m.start_at,
        end_at=m.end_at,
        collected_start=m.start_value,
        collected_end=m.end_value,
        collected_usage=m.usage,
        start_value=m.start_value if last is None else last.start_value,
        end_value=m.end_value if last is None else last.end_value,
        usage=m.usage if last is None else last.usage,
        flags=list(m.flags),
        report_flags=list(m.report_flags),
        start_source=(m.start_client, m.start_seq, m.start_sha256),
        end_source=(m.end_client, m.end_seq, m.end_sha256),
        corrections=[(c.corrected_at, c.corrected_by, c.note) for c in corrections],
        excluded=m.excluded,
        exclude_note=m.exclude_note,
    )


__all__ = [
    "MAX_NOTE",
    "STATES",
    "MeterView",
    "PeriodView",
    "approve",
    "collect_period",
    "correct",
    "exclude",
    "mark_exported",
    "periods",
    "plan_of",
    "set_plan",
    "show",
    "validate",
]

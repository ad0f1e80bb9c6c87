"""Scheduled reports as the portal and the CLI manage them, scoped like everything else: a
schedule belongs to one customer (``Scoped.customer_named``), to all the customers of a dealer
when a dealer user makes it for all (``Scoped.own_dealer``), or to every customer when an
administrator does; another tenant's schedule is ``NotFound``.

Customer users schedule reports of their own customers only (never a dealer's or every
customer) and stop the ones a customer user made; those their dealer or an administrator made
they see but may not stop (``ReportError``): the dealer may mail them to its own billing."""

from __future__ import annotations

from datetime import datetime

import msgspec

from .. import reports
from ..addresses import parse_addresses
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import NotFound, ReportError
from ..portal.reports import FORMATS, describe
from ..scoping import Scoped
from .models import ReportSchedule, ReportSend
from .times import CADENCES, MONTH_DAYS, WEEK_DAYS, next_due

SHOWN_SENDS = 50


class ScheduleView(msgspec.Struct, kw_only=True):
    id: int
    customer: str | None
    dealer: str | None  # with customer None: all the customers of this dealer
    kind: str
    fmt: str
    cadence: str
    day: int
    hour: int
    recipients: list[str]
    created_by: str
    next_due_at: datetime
    last_sent_at: datetime | None
    attempts: int
    by_customer: bool  # made by a customer user
    served_by: str | None  # the dealer of the customers it covers (its audit entries')

    @property
    def covers(self) -> str:
        return describe(self.customer, self.dealer)

    @property
    def when(self) -> str:
        if self.cadence == "weekly":
            name = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
            return f"every {name[self.day - 1]} at {self.hour:02d}:00 UTC"
        return f"monthly on day {self.day} at {self.hour:02d}:00 UTC"


class SendView(msgspec.Struct, kw_only=True):
    at: datetime
    schedule_id: int | None
    customer: str | None
    dealer: str | None
    kind: str
    fmt: str
    period_start: datetime
    period_end: datetime
    recipients: list[str]
    outcome: str
    detail: str
    size: int

    @property
    def covers(self) -> str:
        return describe(self.customer, self.dealer)


def parse_recipients(text: str) -> list[str]:
    """Addresses separated by commas, spaces or lines; ReportError naming a bad one."""
    return parse_addresses(text, error=ReportError)


def add_schedule(
    scoped: Scoped,
    *,
    customer: str,
    kind: str,
    fmt: str,
    cadence: str,
    day: int,
    hour: int,
    recipients: list[str],
    by: str,
    now: datetime,
) -> ScheduleView:
    """Schedule a report; ``customer`` "" is every customer for administrators, all its customers
    for a dealer user (NotFound for a customer user, who names one of its customers)."""
    if kind not in reports.KINDS:
        raise ReportError(f"report kind {kind!r} is not one of {', '.join(reports.KINDS)}", hint="pick one")
    if fmt not in FORMATS:
        raise ReportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}", hint="pick html, csv or pdf")
    if cadence not in CADENCES:
        raise ReportError(f"cadence {cadence!r} is not weekly or monthly", hint="pick weekly or monthly")
    days = WEEK_DAYS if cadence == "weekly" else MONTH_DAYS
    if day not in days:
        raise ReportError(
            f"day {day} is not between {days[0]} and {days[-1]} for a {cadence} report",
            hint="weekly: 1 (Monday) to 7 (Sunday); monthly: 1 to 28, which every month has",
        )
    if not 0 <= hour <= 23:
        raise ReportError(f"hour {hour} is not between 0 and 23", hint="the hour of the day, UTC")
    recipients = parse_recipients(" ".join(recipients))
    with translated("cannot save the scheduled report"):
        customer_id: int | None = None
        dealer_id: int | None = None
        if customer == "":
            if not scoped.sees_all:
                dealer_id = scoped.own_dealer().id
        else:
            customer_id = scoped.customer_named(customer).id
        row = ReportSchedule.create(
            customer=customer_id,
            dealer=dealer_id,
            kind=kind,
            fmt=fmt,
            cadence=cadence,
            day=day,
            hour=hour,
            recipients=recipients,
            created_by=by,
            created_at=now,
            next_due_at=next_due(cadence, day, hour, after=now),
            by_customer=scoped.role == "customer",
        )
    return schedule(scoped, row.id)


class _Names(msgspec.Struct):
    customers: dict[int, str]
    dealers: dict[int, str]
    dealer_of: dict[int, int]  # customer id -> its dealer's id

    def customer(self, customer_id: int | None) -> str | None:
        return self.customers.get(customer_id) if customer_id is not None else None

    def dealer(self, dealer_id: int | None) -> str | None:
        return self.dealers.get(dealer_id) if dealer_id is not None else None

    def served_by(self, customer_id: int | None, dealer_id: int | None) -> str | None:
        """The dealer of a schedule's customer, or its own dealer for an all-customers one."""
        return self.dealer(self.dealer_of.get(customer_id) if customer_id is not None else dealer_id)


def _names() -> _Names:
    customers = list(Customer.select(Customer.id, Customer.name, Customer.dealer))
    return _Names(
        {c.id: c.name for c in customers},
        {d.id: d.name for d in Dealer.select(Dealer.id, Dealer.name)},
        {c.id: c.dealer_id for c in customers if c.dealer_id is not None},
    )


def _view(row: ReportSchedule, names: _Names) -> ScheduleView:
    return ScheduleView(
        id=row.id,
        customer=names.customer(row.customer_id),
        dealer=names.dealer(row.dealer_id),
        kind=row.kind,
        fmt=row.fmt,
        cadence=row.cadence,
        day=row.day,
        hour=row.hour,
        recipients=list(row.recipients),
        created_by=row.created_by,
        next_due_at=row.next_due_at,
        last_sent_at=row.last_sent_at,
        attempts=row.attempts,
        by_customer=row.by_customer,
        served_by=names.served_by(row.customer_id, row.dealer_id),
    )


def schedules(scoped: Scoped) -> list[ScheduleView]:
    """The schedules in scope (every-customer ones: administrators only; a dealer's all-customers
    ones: that dealer's users and administrators)."""
    with translated("cannot list the scheduled reports"):
        names = _names()
        q = scoped.restrict_owned(ReportSchedule.select(), ReportSchedule.customer, ReportSchedule.dealer)
        return [_view(r, names) for r in q.order_by(ReportSchedule.id)]


def schedule(scoped: Scoped, schedule_id: int) -> ScheduleView:
    with translated("cannot read the scheduled report"):
        q = scoped.restrict_owned(ReportSchedule.select(), ReportSchedule.customer, ReportSchedule.dealer)
        row = q.where(ReportSchedule.id == schedule_id).get_or_none()
        if row is None:
            raise NotFound(f"no scheduled report {schedule_id}", hint="see the reports page")
        return _view(row, _names())


def may_stop(scoped: Scoped, view: ScheduleView) -> bool:
    """Whether the viewer may stop a schedule in its scope: customer users only those a customer
    user made."""
    return scoped.role != "customer" or view.by_customer


def delete_schedule(scoped: Scoped, schedule_id: int) -> ScheduleView:
    """Remove a schedule in scope (its sends stay in the log); ReportError for a customer user and
    a schedule its dealer or an administrator made."""
    found = schedule(scoped, schedule_id)
    if not may_stop(scoped, found):
        raise ReportError(
            f"scheduled report {schedule_id} was set up by your dealer or an administrator",
            hint="ask your dealer to stop or change it",
        )
    with translated("cannot delete the scheduled report"):
        ReportSchedule.delete().where(ReportSchedule.id == schedule_id).execute()
    return found


def sends(scoped: Scoped, *, limit: int = SHOWN_SENDS) -> list[SendView]:
    """The newest sends in scope, newest first."""
    with translated("cannot read the sent reports"):
        names = _names()
        q = scoped.restrict_owned(ReportSend.select(), ReportSend.customer, ReportSend.dealer)
        return [
            SendView(
                at=s.at,
                schedule_id=s.schedule_id,
                customer=names.customer(s.customer_id),
                dealer=names.dealer(s.dealer_id),
                kind=s.kind,
                fmt=s.fmt,
                period_start=s.period_start,
                period_end=s.period_end,
                recipients=list(s.recipients),
                outcome=s.outcome,
                detail=s.detail,
                size=s.size,
            )
            for s in q.order_by(ReportSend.at.desc(), ReportSend.id.desc()).limit(limit)
        ]


__all__ = [
    "ScheduleView",
    "SendView",
    "add_schedule",
    "delete_schedule",
    "may_stop",
    "parse_recipients",
    "schedule",
    "schedules",
    "sends",
]

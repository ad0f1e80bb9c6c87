"""Scheduled-report tables (migrations 20, 27 and 28): what to send to whom and when, and every send."""

from __future__ import annotations

import peewee

from ..db.models import Customer, Dealer, JsonTextField, UtcDateTimeField


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class ReportSchedule(_Model):
    """A report mailed every week (``day`` 1-7, Monday 1) or month (``day`` 1-28) at ``hour``
    UTC, covering the week or the calendar month before; ``customer`` NULL: every customer of
    ``dealer`` (a dealer user's), or with ``dealer`` NULL too every customer (administrators).
    ``by_customer``: made by a customer user, whose customer's users may stop it (the others
    only administrators and dealer users)."""

    id: peewee.AutoField[int]
    customer_id: int | None
    dealer_id: int | None

    customer = peewee.ForeignKeyField(Customer, null=True, on_delete="CASCADE")
    dealer = peewee.ForeignKeyField(Dealer, null=True, on_delete="CASCADE")
    kind = peewee.CharField(max_length=16)
    fmt = peewee.CharField(max_length=8)
    cadence = peewee.CharField(max_length=8)
    day = peewee.IntegerField()
    hour = peewee.IntegerField()
    recipients = JsonTextField()
    created_by = peewee.CharField(max_length=200)
    created_at = UtcDateTimeField()
    next_due_at = UtcDateTimeField(index=True)
    attempts = peewee.IntegerField(default=0)  # failed sends of the current due time
    last_sent_at = UtcDateTimeField(null=True)
    # the database's own default too: a backup from before m028 loads its rows without the column
    by_customer = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])


class ReportSend(_Model):
    """One send of a scheduled report (or a failed try), kept as the log the portal shows."""

    id: peewee.AutoField[int]
    schedule_id: int | None
    customer_id: int | None
    dealer_id: int | None

    schedule = peewee.ForeignKeyField(ReportSchedule, null=True, on_delete="SET NULL")
    customer = peewee.ForeignKeyField(Customer, null=True, on_delete="CASCADE")
    dealer = peewee.ForeignKeyField(Dealer, null=True, on_delete="CASCADE")  # as its schedule's
    at = UtcDateTimeField(index=True)
    kind = peewee.CharField(max_length=16)
    fmt = peewee.CharField(max_length=8)
    period_start = UtcDateTimeField()
    period_end = UtcDateTimeField()
    recipients = JsonTextField()
    outcome = peewee.CharField(max_length=8)  # "sent" or "failed"
    detail = peewee.TextField(default="")  # the relay's answer, or what went wrong
    size = peewee.IntegerField(default=0)  # bytes of the attachment


MODELS: tuple[type[_Model], ...] = (ReportSchedule, ReportSend)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)


__all__ = ["MODELS", "ReportSchedule", "ReportSend", "bind", "create_tables"]

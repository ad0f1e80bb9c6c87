"""Billing tables (migration 15): a customer's plan, its periods, each period's meters, and the
corrections dealers made beside them (a correction never overwrites the collected numbers)."""

from __future__ import annotations

import peewee

from ..db.models import Customer, Device, JsonTextField, UtcDateTimeField


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class BillingPlan(_Model):
    """How a customer is billed: ``monthly`` or ``quarterly`` periods starting on ``anchor_day``
    (1-31; a month shorter than it starts on its last day)."""

    customer = peewee.ForeignKeyField(Customer, primary_key=True, on_delete="CASCADE")
    cadence = peewee.CharField(max_length=16, default="monthly")
    anchor_day = peewee.IntegerField(default=1)
    anchor_month = peewee.IntegerField(default=1)  # quarterly: a month of the first quarter (1-3)


class BillingPeriod(_Model):
    """One customer's period [start, end) and where it is in collected -> validated -> approved
    -> exported."""

    id: peewee.AutoField[int]
    customer_id: int

    customer = peewee.ForeignKeyField(Customer, on_delete="CASCADE")
    start = UtcDateTimeField()
    end = UtcDateTimeField()
    state = peewee.CharField(max_length=16, default="collected")
    collected_at = UtcDateTimeField()
    validated_by = peewee.CharField(max_length=200, null=True)
    validated_at = UtcDateTimeField(null=True)
    approved_by = peewee.CharField(max_length=200, null=True)
    approved_at = UtcDateTimeField(null=True)
    exported_at = UtcDateTimeField(null=True)
    export_sha256 = peewee.CharField(max_length=64, null=True)  # of the CSV last exported

    class Meta:
        indexes = ((("customer", "start"), True),)


class BillingMeter(_Model):
    """One counter of one device in one period, as collected from the readings, with the envelope
    each of its two numbers came from."""

    id: peewee.AutoField[int]
    period_id: int
    device_id: int

    period = peewee.ForeignKeyField(BillingPeriod, backref="meters", on_delete="CASCADE")
    device = peewee.ForeignKeyField(Device, on_delete="CASCADE")
    counter = peewee.CharField(max_length=64)
    start_at = UtcDateTimeField()
    start_value = peewee.BigIntegerField()
    end_at = UtcDateTimeField()
    end_value = peewee.BigIntegerField()
    usage = peewee.BigIntegerField()
    flags = JsonTextField(default="[]")  # what stops approval (billing.flags.BLOCKING) and notes
    report_flags = JsonTextField(default="[]")  # the meters report's own flags (added, removed, ...)
    # provenance: (client name, seq, sha256) of the envelope of the start and the end read
    start_client = peewee.CharField(max_length=64)
    start_seq = peewee.BigIntegerField()
    start_sha256 = peewee.CharField(max_length=64)
    end_client = peewee.CharField(max_length=64)
    end_seq = peewee.BigIntegerField()
    end_sha256 = peewee.CharField(max_length=64)
    excluded = peewee.BooleanField(default=False)
    excluded_by = peewee.CharField(max_length=200, null=True)
    exclude_note = peewee.TextField(null=True)

    class Meta:
        indexes = ((("period", "device", "counter"), True),)


class BillingCorrection(_Model):
    """A dealer's correction of one meter: the numbers to bill instead, and why. The newest one is
    the one billed; the older ones and the collected numbers stay."""

    id: peewee.AutoField[int]
    meter_id: int

    meter = peewee.ForeignKeyField(BillingMeter, backref="corrections", on_delete="CASCADE")
    start_value = peewee.BigIntegerField()
    end_value = peewee.BigIntegerField()
    usage = peewee.BigIntegerField()
    note = peewee.TextField()
    corrected_by = peewee.CharField(max_length=200)
    corrected_at = UtcDateTimeField()


MODELS: tuple[type[_Model], ...] = (BillingPlan, BillingPeriod, BillingMeter, BillingCorrection)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)


__all__ = [
    "MODELS",
    "BillingCorrection",
    "BillingMeter",
    "BillingPeriod",
    "BillingPlan",
    "bind",
    "create_tables",
]

"""Supply-order tables (migration 16): each customer's lead time and margin, and the order
proposals with their state and what the replacement that closed them showed."""

from __future__ import annotations

import peewee

from ..db.models import Customer, Device, UtcDateTimeField

#: The states an order passes through; "ignored" and "delivered" end it.
STATES = ("proposed", "approved", "ordered", "delivered", "ignored")
#: States of an order still waiting for its supply: at most one per supply (a partial unique index).
OPEN_STATES = ("proposed", "approved", "ordered")


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class OrderSettings(_Model):
    """A customer's own lead time and margin (days); a customer without a row takes [orders]."""

    customer = peewee.ForeignKeyField(Customer, primary_key=True, on_delete="CASCADE")
    lead_days = peewee.IntegerField()
    margin_days = peewee.IntegerField()
    updated_by = peewee.CharField(max_length=200)
    updated_at = UtcDateTimeField()


class SupplyOrder(_Model):
    """One proposal to ship one supply of one device, from proposed to delivered or ignored.

    ``cycle`` is the start of the supply's fit when it was proposed (``supply_latest.since``,
    the last replacement): a new cycle is a replacement, which closes the order, and an order
    ignored or delivered by hand keeps its supply from being proposed again until then.
    """

    id: peewee.AutoField[int]
    device_id: int
    customer_id: int

    device = peewee.ForeignKeyField(Device, on_delete="CASCADE")
    customer = peewee.ForeignKeyField(Customer, on_delete="CASCADE")  # the device's, for scoping
    supply_key = peewee.CharField(max_length=400)  # supply_latest.key
    description = peewee.TextField(default="")
    kind = peewee.CharField(max_length=64)
    color = peewee.CharField(max_length=32, null=True)
    part_number = peewee.CharField(max_length=32, null=True)
    cycle = UtcDateTimeField(null=True)
    state = peewee.CharField(max_length=16, default="proposed")
    reason = peewee.CharField(max_length=16)  # "forecast" (days left) or "level" (low/empty)
    lead_days = peewee.IntegerField()  # the settings it was proposed under
    margin_days = peewee.IntegerField()
    proposed_at = UtcDateTimeField()
    percent = peewee.FloatField(null=True)  # the newest level seen while open
    observed_at = UtcDateTimeField()  # ... and when it was read
    empty_at = UtcDateTimeField(null=True)  # the newest forecast of the empty date while open
    approved_at = UtcDateTimeField(null=True)
    approved_by = peewee.CharField(max_length=200, null=True)
    ordered_at = UtcDateTimeField(null=True)
    ordered_by = peewee.CharField(max_length=200, null=True)
    order_ref = peewee.CharField(max_length=100, null=True)  # the ERP's order number
    delivered_at = UtcDateTimeField(null=True)
    delivered_by = peewee.CharField(max_length=200, null=True)  # None: closed by a detected replacement
    ignored_at = UtcDateTimeField(null=True)
    ignored_by = peewee.CharField(max_length=200, null=True)
    ignore_reason = peewee.TextField(null=True)
    replaced_at = UtcDateTimeField(null=True)  # the replacement detected at ingest
    early_days = peewee.FloatField(null=True)  # empty_at - replaced_at: > 0 early, < 0 late
    after_approval_days = peewee.FloatField(null=True)  # replaced_at - approved_at

    class Meta:
        indexes = ((("device", "supply_key", "cycle"), False), (("customer", "state", "proposed_at"), False))


MODELS: tuple[type[_Model], ...] = (OrderSettings, SupplyOrder)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    """The tables, and the index that keeps one open order per supply."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
    states = ", ".join(f"'{s}'" for s in OPEN_STATES)
    database.execute_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS supply_order_open ON supply_order (device_id, supply_key) "
        f"WHERE state IN ({states})"
    )


__all__ = ["MODELS", "OPEN_STATES", "STATES", "OrderSettings", "SupplyOrder", "bind", "create_tables"]

"""The inventory report: devices per customer and site with identity, first/last seen, PMD."""

from __future__ import annotations

from datetime import datetime

import msgspec
from peewee import JOIN

from ..db.connect import translated
from ..db.models import CounterLatest, Device
from .scope import DeviceInfo, Scope, chunks, device_sort_key, devices_in_scope


class InventoryRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    firmware: str | None
    hostname: str | None
    mac: str | None
    pmd: str | None
    first_seen: datetime
    last_seen: datetime
    total: int | None  # the newest "total" page counter


class Inventory(msgspec.Struct, kw_only=True, tag="inventory", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    rows: list[InventoryRow]



def inventory(scope: Scope) -> Inventory:
    """Devices per customer and site with identity, location, first/last seen, PMD used."""
    with translated("cannot build the inventory report"):
        infos = devices_in_scope(scope.customer)
        rows = []
        for part in chunks(infos):
            q = (Device.select(Device, CounterLatest.value.alias("total"))
                 .join(CounterLatest, JOIN.LEFT_OUTER,
                       on=((CounterLatest.device == Device.id) & (CounterLatest.name == "total")))
                 .where(Device.id.in_(part)))
            for d in q.objects():
                rows.append(InventoryRow(device=infos[d.id], firmware=d.firmware, hostname=d.hostname,
                                         mac=d.mac, pmd=d.pmd, first_seen=d.first_seen, last_seen=d.last_seen,
                                         total=d.total))
    rows.sort(key=lambda r: device_sort_key(r.device))
    return Inventory(generated_at=scope.now, customer=scope.customer, rows=rows)



__all__ = ["Inventory", "InventoryRow", "inventory"]

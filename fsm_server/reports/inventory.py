"""The inventory report: devices per customer and site with identity, first/last seen, PMD."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..db import sql
from ..db.connect import Database, translated
from .scope import NO_CUSTOMER, DeviceInfo, Scope, bound_database, device_sort_key, scope_where


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


#: Every device in scope with the names every report shows (``scope.DEVICES_SQL``), the
#: inventory's columns and its newest "total" counter, in one pass over the device table.
INVENTORY_SQL = """
SELECT d.id, cu.name, s.name, cl.name, d.manufacturer, d.model, d.serial, d.ip, d.location,
       d.firmware, d.hostname, d.mac, d.pmd, d.first_seen, d.last_seen, t.value
FROM device d JOIN client cl ON cl.id = d.client_id JOIN customer cu ON cu.id = d.customer_id
LEFT JOIN site s ON s.id = d.site_id
LEFT JOIN counter_latest t ON t.device_id = d.id AND t.name = 'total'
WHERE {where}
"""


def inventory(scope: Scope, *, db: Database | None = None) -> Inventory:
    """Devices per customer and site with identity, location, first/last seen, PMD used."""
    db = db or bound_database()
    rows = []
    utc = sql.utc
    where, params = scope_where(scope.customer, scope.dealer)
    q = INVENTORY_SQL.format(where=where)
    with translated("cannot build the inventory report"):
        for r in sql.rows(db, q, params):
            info = DeviceInfo(
                id=r[0],
                customer=r[1] or NO_CUSTOMER,
                site=r[2] or "",
                client=r[3],
                manufacturer=r[4],
                model=r[5],
                serial=r[6],
                ip=r[7],
                location=r[8],
            )
            rows.append(
                InventoryRow(
                    device=info,
                    firmware=r[9],
                    hostname=r[10],
                    mac=r[11],
                    pmd=r[12],
                    first_seen=utc(r[13]),
                    last_seen=utc(r[14]),
                    total=r[15],
                )
            )
    rows.sort(key=lambda x: (device_sort_key(x.device), x.device.id))  # report order, as sorted_devices
    return Inventory(generated_at=scope.now, customer=scope.customer, rows=rows)


__all__ = ["INVENTORY_SQL", "Inventory", "InventoryRow", "inventory"]

"""The inventory report: devices per customer and site with identity, first/last seen, PMD."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..db import sql
from ..db.connect import Database, translated
from .scope import DeviceInfo, Scope, bound_database, chunks, sorted_devices


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


#: The inventory's columns of a chunk of devices with their newest "total" counter.
INVENTORY_SQL = """
SELECT d.id, d.firmware, d.hostname, d.mac, d.pmd, d.first_seen, d.last_seen, t.value
FROM device d LEFT JOIN counter_latest t ON t.device_id = d.id AND t.name = 'total'
WHERE {devices}
"""


def inventory(scope: Scope, *, db: Database | None = None) -> Inventory:
    """Devices per customer and site with identity, location, first/last seen, PMD used."""
    db = db or bound_database()
    rows = []
    with translated("cannot build the inventory report"):
        infos = sorted_devices(scope.customer)
        for part in chunks(infos, 1000):
            where, params = sql.in_list(db, "d.id", [d.id for d in part])
            found = {r[0]: r for r in sql.rows(db, INVENTORY_SQL.format(devices=where), params)}
            for d in part:
                _, firmware, hostname, mac, pmd, first_seen, last_seen, total = found[d.id]
                rows.append(
                    InventoryRow(
                        device=d,
                        firmware=firmware,
                        hostname=hostname,
                        mac=mac,
                        pmd=pmd,
                        first_seen=sql.utc(first_seen),
                        last_seen=sql.utc(last_seen),
                        total=total,
                    )
                )
    return Inventory(generated_at=scope.now, customer=scope.customer, rows=rows)


__all__ = ["INVENTORY_SQL", "Inventory", "InventoryRow", "inventory"]

"""Which devices and period a report covers, and how every report names and orders devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from peewee import PostgresqlDatabase

from fsm_protocol.display import device_name

from ..db import sql
from ..db.connect import Database
from ..db.models import Device

T = TypeVar("T")
#: Charts per report at most: a fleet of thousands gets its tables, not thousands of charts (the
#: reports keep the history of that many devices only).
MAX_CHARTS = 60
NO_CUSTOMER = ""  # devices of reports that named no customer


class Scope(msgspec.Struct, kw_only=True):
    """Which devices and which period a report covers; ``end`` is exclusive."""

    start: datetime
    end: datetime
    now: datetime
    customer: str | None = None
    #: every customer of this dealer (a dealer's report over all its customers); with
    #: ``customer`` None, None: every customer
    dealer: str | None = None

    @classmethod
    def recent(cls, *, days: int = 30, customer: str | None = None, now: datetime | None = None) -> Scope:
        now = now or datetime.now(UTC)
        return cls(start=now - timedelta(days=days), end=now, now=now, customer=customer)


class DeviceInfo(msgspec.Struct, kw_only=True):
    """A device as every report names it."""

    id: int
    customer: str
    site: str
    client: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    ip: str
    location: str | None = None

    @property
    def name(self) -> str:
        """Maker and model, the maker once ("HP Color LaserJet M452nw", not "HP HP Color ...")."""
        return device_name(self.manufacturer, self.model)

    @property
    def label(self) -> str:
        return f"{self.name or 'device'} {self.serial or self.ip}"


#: The devices in scope with the names every report shows (a device's customer is its client's
#: customer, fsm_server.tenancy); ``{where}`` is ``scope_where``'s.
DEVICES_SQL = """
SELECT d.id, cu.name, s.name, cl.name, d.manufacturer, d.model, d.serial, d.ip, d.location
FROM device d JOIN client cl ON cl.id = d.client_id JOIN customer cu ON cu.id = d.customer_id
LEFT JOIN site s ON s.id = d.site_id
WHERE {where}
"""


def scope_where(customer: str | None, dealer: str | None = None) -> tuple[str, list[str]]:
    """(SQL condition on ``cu``, the customer table, and its parameters): the customer's rows, else
    those of every customer of the dealer, else every row."""
    if customer is not None:
        return "cu.name = ?", [customer]
    if dealer is not None:
        return "cu.dealer_id IN (SELECT dl.id FROM dealer dl WHERE dl.name = ?)", [dealer]
    return "1 = 1", []


def devices_in_scope(
    customer: str | None, db: Database | None = None, *, dealer: str | None = None
) -> dict[int, DeviceInfo]:
    """Every device (of ``customer`` when given, else of ``dealer``'s customers when given), by
    id; a device's customer is its client's (``fsm_server.tenancy``)."""
    db = db or bound_database()
    where, params = scope_where(customer, dealer)
    q = DEVICES_SQL.format(where=where)
    return {
        r[0]: DeviceInfo(
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
        for r in sql.rows(db, q, params)
    }


def sorted_devices(customer: str | None, dealer: str | None = None) -> list[DeviceInfo]:
    """The devices in scope in report order (``device_sort_key``, then id)."""
    devices = devices_in_scope(customer, dealer=dealer).values()
    return sorted(devices, key=lambda d: (device_sort_key(d), d.id))


def device_facts(db: Database, device_ids: Sequence[int]) -> tuple[dict[int, bool], dict[int, datetime]]:
    """Per device, whether its identity is strong (a serial) and when it was first seen."""
    strong: dict[int, bool] = {}
    first_seen: dict[int, datetime] = {}
    for part in chunks(device_ids, 1000):
        where, params = sql.in_list(db, "id", part)
        for dev, identity, first in sql.rows(
            db, f"SELECT id, identity, first_seen FROM device WHERE {where}", params
        ):
            strong[dev] = identity.startswith("sn:")
            first_seen[dev] = sql.utc(first)
    return strong, first_seen


def bound_database() -> Database:
    """The database the models are bound to (``open_database`` binds them), for the SQL of reports."""
    pw = Device._meta.database
    return Database(pw, "postgresql" if isinstance(pw, PostgresqlDatabase) else "sqlite", "")


def chunks(items: Iterable[T], size: int = 500) -> Iterable[list[T]]:
    """``items`` in lists of ``size`` (IN lists stay under the databases' parameter limits)."""
    listed = list(items)
    for i in range(0, len(listed), size):
        yield listed[i : i + size]


def device_sort_key(d: DeviceInfo) -> tuple[str, str, str, str]:
    return (d.customer, d.site, d.manufacturer or "", d.serial or d.ip)


__all__ = [
    "DEVICES_SQL",
    "MAX_CHARTS",
    "NO_CUSTOMER",
    "DeviceInfo",
    "Scope",
    "bound_database",
    "chunks",
    "device_facts",
    "device_sort_key",
    "devices_in_scope",
    "scope_where",
    "sorted_devices",
]

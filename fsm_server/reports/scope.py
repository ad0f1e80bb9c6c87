"""Which devices and period a report covers, and how every report names and orders devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from peewee import JOIN, PostgresqlDatabase

from fsm_protocol.display import device_name

from ..db import sql
from ..db.connect import Database
from ..db.models import Client, Customer, Device, Site

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


def devices_in_scope(customer: str | None) -> dict[int, DeviceInfo]:
    """Every device (of ``customer`` when given), by id; a device's customer is its client's
    (``fsm_server.tenancy``)."""
    q = (Device.select(Device.id, Device.manufacturer, Device.model, Device.serial, Device.ip,
                       Device.location, Client.name.alias("client_name"), Site.name.alias("site_name"),
                       Customer.name.alias("customer_name"))
         .join(Client, on=(Device.client == Client.id))
         .switch(Device).join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
         .switch(Device).join(Customer, on=(Device.customer == Customer.id)))
    if customer is not None:
        q = q.where(Customer.name == customer)
    return {r.id: DeviceInfo(id=r.id, customer=r.customer_name or NO_CUSTOMER, site=r.site_name or "",
                             client=r.client_name, manufacturer=r.manufacturer, model=r.model,
                             serial=r.serial, ip=r.ip, location=r.location) for r in q.objects()}


def sorted_devices(customer: str | None) -> list[DeviceInfo]:
    """The devices in scope in report order (``device_sort_key``, then id)."""
    return sorted(devices_in_scope(customer).values(), key=lambda d: (device_sort_key(d), d.id))


def device_facts(db: Database, device_ids: Sequence[int]) -> tuple[dict[int, bool], dict[int, datetime]]:
    """Per device, whether its identity is strong (a serial) and when it was first seen."""
    strong: dict[int, bool] = {}
    first_seen: dict[int, datetime] = {}
    for part in chunks(device_ids, 1000):
        where, params = sql.in_list(db, "id", part)
        for dev, identity, first in sql.rows(db, f"SELECT id, identity, first_seen FROM device WHERE {where}",
                                             params):
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
        yield listed[i:i + size]


def device_sort_key(d: DeviceInfo) -> tuple[str, str, str, str]:
    return (d.customer, d.site, d.manufacturer or "", d.serial or d.ip)



__all__ = ["MAX_CHARTS", "NO_CUSTOMER", "DeviceInfo", "Scope", "bound_database", "chunks", "device_facts",
           "device_sort_key", "devices_in_scope", "sorted_devices"]

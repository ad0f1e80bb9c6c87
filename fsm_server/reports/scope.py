"""Which devices and period a report covers, and how every report names and orders devices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from peewee import JOIN

from fsm_protocol.display import device_name

from ..db.models import Client, Customer, Device, Site

T = TypeVar("T")
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


def chunks(items: Iterable[T], size: int = 500) -> Iterable[list[T]]:
    """``items`` in lists of ``size`` (IN lists stay under the databases' parameter limits)."""
    listed = list(items)
    for i in range(0, len(listed), size):
        yield listed[i:i + size]


def device_sort_key(d: DeviceInfo) -> tuple[str, str, str, str]:
    return (d.customer, d.site, d.manufacturer or "", d.serial or d.ip)



__all__ = ["NO_CUSTOMER", "DeviceInfo", "Scope", "chunks", "device_sort_key", "devices_in_scope"]

"""Read-side core API over the server database: devices, sequence gaps, quarantine, envelopes.

The CLI renders these; a later portal and the report engine call the same functions. Each
returns msgspec Structs (so ``--json`` is just ``print_json``). They use the models bound by
``open_database``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import JOIN, fn

from .db.connect import translated
from .db.models import Client, CounterLatest, Customer, Device, Envelope, PendingChunk, Quarantine, Site

if TYPE_CHECKING:
    # What a query selects beside a model's fields (aliased columns) peewee sets on each row;
    # these declare it, for the rows that have it.

    class _ListedDevice(Device):
        client_name: str
        site_name: str | None
        total: int | None
        customer_name: str


class DeviceRow(msgspec.Struct, kw_only=True):
    id: int
    client: str
    site: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    ip: str
    mac: str | None
    first_seen: datetime
    last_seen: datetime
    total: int | None = None  # the latest "total" page counter
    customer: str = ""  # the customer of the client that reads it (fsm_server.tenancy)


class Gap(msgspec.Struct, kw_only=True):
    """Sequence numbers ``first``..``last`` of ``client`` never arrived (ask for a resend)."""

    client: str
    first: int
    last: int
    kind: str = "missing"  # missing | incomplete (some chunks arrived)

    @property
    def count(self) -> int:
        return self.last - self.first + 1


class QuarantineRow(msgspec.Struct, kw_only=True):
    id: int
    reason: str
    detail: str
    client: str | None
    seq: int | None
    source: str
    size: int
    received_at: datetime
    quarantined_at: datetime
    status: str
    hint: str = ""
    message_id: str | None = None


def devices(*, client: str | None = None) -> list[DeviceRow]:
    """Every device, newest first; with ``client``, that client's only."""
    with translated("cannot list devices"):
        q = (
            Device.select(
                Device,
                Client.name.alias("client_name"),
                Site.name.alias("site_name"),
                CounterLatest.value.alias("total"),
                Customer.name.alias("customer_name"),
            )
            .join(Client, on=(Device.client == Client.id))
            .switch(Device)
            .join(Customer, on=(Device.customer == Customer.id))
            .switch(Device)
            .join(Site, JOIN.LEFT_OUTER, on=(Device.site == Site.id))
            .switch(Device)
            .join(
                CounterLatest,
                JOIN.LEFT_OUTER,
                on=((CounterLatest.device == Device.id) & (CounterLatest.name == "total")),
            )
            .order_by(Device.last_seen.desc(), Device.id)
        )
        if client is not None:
            q = q.where(Client.name == client)
        return [
            DeviceRow(
                id=d.id,
                client=d.client_name,
                site=d.site_name,
                manufacturer=d.manufacturer,
                model=d.model,
                serial=d.serial,
                ip=d.ip,
                mac=d.mac,
                first_seen=d.first_seen,
                last_seen=d.last_seen,
                total=d.total,
                customer=d.customer_name,
            )
            for d in cast("Iterable[_ListedDevice]", q.objects())
        ]


def gaps(*, client: str | None = None, client_ids: Collection[int] | None = None) -> list[Gap]:
    """Missing sequence ranges per client: before the lowest seq received (from 1) and between;
    with ``client_ids``, of those clients only (the portal's scope)."""
    with translated("cannot compute sequence gaps"):
        prev = fn.LAG(Envelope.seq).over(partition_by=[Envelope.client], order_by=[Envelope.seq])
        inner = Envelope.select(Envelope.client, Envelope.seq, prev.alias("prev"))
        if client_ids is not None:
            inner = inner.where(Envelope.client.in_(sorted(client_ids)))
        q = (
            Client.select(Client.name, inner.c.seq, inner.c.prev)
            .join(inner, on=(inner.c.client_id == Client.id))
            .where((inner.c.prev.is_null() & (inner.c.seq > 1)) | (inner.c.seq - inner.c.prev > 1))
            .order_by(Client.name, inner.c.seq)
        )
        if client is not None:
            q = q.where(Client.name == client)
        rows = cast("Iterable[tuple[str, int, int | None]]", q.tuples())
        out = [Gap(client=name, first=(prev or 0) + 1, last=seq - 1) for name, seq, prev in rows]
        partial = (
            PendingChunk.select(Client.name, PendingChunk.seq)
            .join(Client)
            .group_by(Client.name, PendingChunk.seq)
        )
        if client is not None:
            partial = partial.where(Client.name == client)
        if client_ids is not None:
            partial = partial.where(Client.id.in_(sorted(client_ids)))
        incomplete = [
            Gap(client=name, first=seq, last=seq, kind="incomplete")
            for name, seq in cast("Iterable[tuple[str, int]]", partial.tuples())
        ]
    return sorted(out + incomplete, key=lambda g: (g.client, g.first))


def quarantine(
    *, status: str | None = "held", reason: str | None = None, limit: int = 1000
) -> list[QuarantineRow]:
    """Quarantined messages, newest first."""
    with translated("cannot list the quarantine"):
        q = Quarantine.select(*[f for f in Quarantine._meta.sorted_fields if f.name != "raw"])
        if status is not None:
            q = q.where(Quarantine.status == status)
        if reason is not None:
            q = q.where(Quarantine.reason == reason)
        q = q.order_by(Quarantine.quarantined_at.desc(), Quarantine.id.desc()).limit(limit)
        return [quarantine_row(r) for r in q]


def quarantine_entry(entry_id: int) -> tuple[QuarantineRow, bytes]:
    """One quarantined message and the bytes kept of it."""
    from .errors import IngestError

    with translated(f"cannot read quarantine entry {entry_id}"):
        r = Quarantine.get_or_none(Quarantine.id == entry_id)
    if r is None:
        raise IngestError(f"no quarantine entry {entry_id}", hint="see `fsm-server quarantine list`")
    return quarantine_row(r), bytes(r.raw)


def quarantine_counts(clients: Collection[str] | None = None) -> dict[str, int]:
    """Held messages by reason: all of them, or those naming one of ``clients``."""
    with translated("cannot count the quarantine"):
        held = Quarantine.status == "held"
        if clients is not None:
            held &= Quarantine.client_name.in_(sorted(clients))
        q = (
            Quarantine.select(Quarantine.reason, fn.COUNT(Quarantine.id).alias("n"))
            .where(held)
            .group_by(Quarantine.reason)
        )
        return dict(cast("Iterable[tuple[str, int]]", q.tuples()))


def envelope_counts() -> dict[str, int]:
    """Reports loaded per client."""
    with translated("cannot count envelopes"):
        q = (
            Client.select(Client.name, fn.COUNT(Envelope.id).alias("n"))
            .join(Envelope, JOIN.LEFT_OUTER, on=(Envelope.client == Client.id))
            .group_by(Client.name)
        )
        return dict(cast("Iterable[tuple[str, int]]", q.tuples()))


def quarantine_row(r: Quarantine) -> QuarantineRow:
    """A quarantine entry as the listings show it (everything but its bytes)."""
    return QuarantineRow(
        id=r.id,
        reason=r.reason,
        detail=r.detail,
        client=r.client_name,
        seq=r.seq,
        source=r.source,
        size=r.raw_size,
        received_at=r.received_at,
        quarantined_at=r.quarantined_at,
        status=r.status,
        hint=r.hint,
        message_id=r.message_id,
    )


__all__ = [
    "DeviceRow",
    "Gap",
    "QuarantineRow",
    "devices",
    "envelope_counts",
    "gaps",
    "quarantine",
    "quarantine_counts",
    "quarantine_entry",
    "quarantine_row",
]

"""Who may see what: the one scoping helper every portal query goes through.

A viewer is an administrator (every customer), a dealer user (the customers its dealer serves,
``fsm_server.customers``) or a customer user (its own customers). ``Scoped.of(viewer)`` turns
one into the set of customer ids it may see (one query); the ``Scoped`` methods then narrow
queries of devices, clients, sites, readings and quarantine entries to that set, and fetch one
object by id or name answering ``NotFound`` alike for another tenant's object and for one that
does not exist (the portal's 404).

Readings belong to the customer of the client that sent them (``fsm_server.tenancy``), which is
the device row's customer: scoping by ``device.customer_id`` is scoping by the sending client.
Quarantine entries belong to the customer of the client they name; entries naming no known
client (a stranger's mail, a bad signature from an unknown sender) are for administrators only,
and customer users see no quarantine at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import peewee

from .accounts.principal import ROLES, Role
from .db.connect import translated
from .db.models import Client, Customer, Dealer, Device, Quarantine
from .errors import NotFound

Q = TypeVar("Q", bound=peewee.Select)


class Viewer(Protocol):
    """What scoping needs of a logged-in user (the portal's Principal has these)."""

    @property
    def role(self) -> str: ...

    @property
    def dealer(self) -> str | None: ...

    @property
    def customers(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Scoped:
    """The customers a viewer may see, and queries narrowed to them."""

    role: Role
    #: the visible customers' ids; None: every customer (administrators)
    customer_ids: frozenset[int] | None
    #: the dealer of a dealer user: its customers are the ids above, and dealer-wide reports and
    #: schedules are its own
    dealer: str | None = None

    @classmethod
    def of(cls, viewer: Viewer) -> Scoped:
        """The scope of ``viewer``; a role this code does not know sees nothing (deny by default)."""
        role = viewer.role
        with translated("cannot read the viewer's customers"):
            if role == "admin":
                return cls("admin", None)
            if role == "dealer" and viewer.dealer:
                ids = (
                    Customer.select(Customer.id)
                    .join(Dealer, on=(Customer.dealer == Dealer.id))
                    .where(Dealer.name == viewer.dealer)
                )
                return cls("dealer", frozenset(c.id for c in ids), viewer.dealer)
            if role == "customer" and viewer.customers:
                ids = Customer.select(Customer.id).where(Customer.name.in_(list(viewer.customers)))
                return cls("customer", frozenset(c.id for c in ids))
        return cls("customer", frozenset())

    @property
    def sees_all(self) -> bool:
        return self.customer_ids is None

    @property
    def sees_quarantine(self) -> bool:
        """Quarantine is for administrators and dealers (customers see none of it)."""
        return self.role in ("admin", "dealer")

    def restrict(self, query: Q, customer_field: peewee.Field) -> Q:
        """``query`` limited to rows whose ``customer_field`` is a visible customer."""
        if self.customer_ids is None:
            return query
        return query.where(customer_field.in_(sorted(self.customer_ids)))

    def restrict_owned(self, query: Q, customer_field: peewee.Field, dealer_field: peewee.Field) -> Q:
        """``query`` limited to rows of a visible customer or, for a dealer user, rows of its own
        dealer (dealer-wide schedules and sends; administrators see every row)."""
        if self.customer_ids is None:
            return query
        visible = customer_field.in_(sorted(self.customer_ids))
        if self.role != "dealer" or not self.dealer:
            return query.where(visible)
        own = Dealer.select(Dealer.id).where(Dealer.name == self.dealer)
        return query.where(visible | dealer_field.in_(own))

    def own_dealer(self) -> Dealer:
        """The viewer's dealer, for a report over all its customers; NotFound for anyone but a
        dealer user (administrators pick every customer, customer users have no dealer scope)."""
        found = None
        if self.role == "dealer" and self.dealer:
            with translated("cannot read the dealer"):
                found = Dealer.get_or_none(Dealer.name == self.dealer)
        if found is None:
            raise NotFound("no dealer scope", hint="pick one of your customers")
        return found

    def customers(self) -> peewee.ModelSelect[Customer]:
        return self.restrict(Customer.select(), Customer.id)

    def devices(self, *fields: peewee.ColumnBase) -> peewee.ModelSelect[Device]:
        """Devices in scope (``fields`` selected; the whole row when none)."""
        return self.restrict(Device.select(*fields), Device.customer)

    def clients(self, *fields: peewee.ColumnBase) -> peewee.ModelSelect[Client]:
        """Clients in scope: those enrolled under a visible customer (unbound ones: admins only)."""
        return self.restrict(Client.select(*fields), Client.customer)

    def quarantine(self, *fields: peewee.ColumnBase) -> peewee.ModelSelect[Quarantine]:
        """Quarantine entries in scope: those naming a client of a visible customer."""
        q = Quarantine.select(*fields)
        if not self.sees_quarantine:
            return q.where(Quarantine.id < 0)  # nothing, yet a query like the others
        if self.customer_ids is None:
            return q
        names = Client.select(Client.name).where(Client.customer.in_(sorted(self.customer_ids)))
        return q.where(Quarantine.client_name.in_(names))

    def device(self, device_id: int) -> Device:
        """Device ``device_id`` if in scope; NotFound otherwise (another tenant's or none)."""
        with translated(f"cannot read device {device_id}"):
            found = self.devices().where(Device.id == device_id).get_or_none()
        if found is None:
            raise NotFound(f"no device {device_id}", hint="see the devices list")
        return found

    def client(self, name: str) -> Client:
        with translated("cannot read a client"):
            found = self.clients().where(Client.name == name).get_or_none()
        if found is None:
            raise NotFound(f"no client {name!r}", hint="see the clients list")
        return found

    def quarantine_entry(self, entry_id: int) -> Quarantine:
        fields = [f for f in Quarantine._meta.sorted_fields if f.name != "raw"]
        with translated(f"cannot read quarantine entry {entry_id}"):
            found = self.quarantine(*fields).where(Quarantine.id == entry_id).get_or_none()
        if found is None:
            raise NotFound(f"no quarantine entry {entry_id}", hint="see the quarantine list")
        return found

    def customer_named(self, name: str) -> Customer:
        found = self.customers().where(Customer.name == name).get_or_none()
        if found is None:
            raise NotFound(f"no customer {name!r}", hint="see the customers list")
        return found


__all__ = ["ROLES", "Role", "Scoped", "Viewer"]

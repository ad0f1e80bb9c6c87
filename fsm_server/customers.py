"""Dealers and the customers they serve: add, list, assign (the CLI and the portal call these).

A customer is served by at most one dealer. A dealer's portal users see that dealer's customers
and nothing else (``fsm_server.scoping``); a customer without a dealer is seen by
administrators only. Customers are also made by ingest (the first report of a client enrolled
without one names it), so ``add_customer`` of an existing name only sets what was given.

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> add_dealer("Northside Office Supplies").name
'Northside Office Supplies'
>>> add_customer("ACME", dealer="Northside Office Supplies").dealer
'Northside Office Supplies'
>>> [c.name for c in list_customers(dealer="Northside Office Supplies")]
['ACME']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import JOIN, fn

from fsm_protocol.schema import LABEL_CHARS

from .db.connect import translated
from .db.models import Client, Customer, Dealer, Device, Site
from .errors import TenancyError
from .tenancy import customer_id

if TYPE_CHECKING:

    class _ListedCustomer(Customer):  # a customer with its dealer's name (``list_customers``)
        dealer_name: str | None


#: Longest dealer or customer name (the columns' size, what a report may name).
MAX_NAME = LABEL_CHARS


class DealerInfo(msgspec.Struct, kw_only=True):
    name: str
    customers: int = 0


class CustomerInfo(msgspec.Struct, kw_only=True):
    name: str
    dealer: str | None
    sites: list[str] = msgspec.field(default_factory=list)
    clients: int = 0
    devices: int = 0


def _check_name(what: str, name: str) -> str:
    text = name.strip()
    if not text or len(text) > MAX_NAME or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise TenancyError(
            f"{what} name {name!r} must be 1 to {MAX_NAME} printable characters",
            hint=f'give the {what}\'s name as people know it, e.g. "ACME Ltd"',
        )
    return text


def _dealer(name: str, advice: str = "") -> Dealer:
    found = Dealer.get_or_none(Dealer.name == name)
    if found is None:
        known = ", ".join(d.name for d in Dealer.select(Dealer.name).order_by(Dealer.name).limit(10))
        raise TenancyError(
            f"no dealer {name!r}",
            hint=(advice or f"add it with `fsm-server dealers add {name!r}`")
            + (f" (known: {known})" if known else ""),
        )
    return found


def add_dealer(name: str) -> DealerInfo:
    """Add dealer ``name`` (an existing one is left as it is)."""
    name = _check_name("dealer", name)
    with translated(f"cannot add dealer {name!r}"):
        Dealer.insert(name=name).on_conflict_ignore().execute()
    return DealerInfo(name=name, customers=Customer.select().join(Dealer).where(Dealer.name == name).count())


def list_dealers() -> list[DealerInfo]:
    """Every dealer with how many customers it serves."""
    with translated("cannot list dealers"):
        q = (
            Dealer.select(Dealer.name, fn.COUNT(Customer.id))
            .join(Customer, JOIN.LEFT_OUTER, on=(Customer.dealer == Dealer.id))
            .group_by(Dealer.name)
            .order_by(Dealer.name)
        )
        return [
            DealerInfo(name=name, customers=n) for name, n in cast("Iterable[tuple[str, int]]", q.tuples())
        ]


def add_customer(name: str, *, dealer: str | None = None, sites: tuple[str, ...] = ()) -> CustomerInfo:
    """Add customer ``name`` (served by ``dealer`` when given) with ``sites``; an existing
    customer keeps its dealer unless one is given."""
    name = _check_name("customer", name)
    with translated(f"cannot add customer {name!r}"), Customer._meta.database.atomic():
        cid = customer_id(name)
        if dealer is not None:
            Customer.update(dealer=_dealer(dealer).id).where(Customer.id == cid).execute()
        for site in sites:
            Site.insert(customer=cid, name=_check_name("site", site)).on_conflict_ignore().execute()
    return get_customer(name)


def assign_dealer(customer: str, dealer: str | None) -> CustomerInfo:
    """Serve ``customer`` by ``dealer`` from now on (None: by none; administrators only see it).
    Its history moves with it: a customer's devices are its own, whoever serves it."""
    with translated(f"cannot assign customer {customer!r}"):
        found = Customer.get_or_none(Customer.name == customer)
        if found is None:
            raise TenancyError(f"no customer {customer!r}", hint="see `fsm-server customers list`")
        Customer.update(dealer=None if dealer is None else _dealer(dealer).id).where(
            Customer.id == found.id
        ).execute()
    return get_customer(customer)


def get_dealer(name: str) -> DealerInfo:
    """Dealer ``name`` with how many customers it serves; TenancyError naming the known ones if none."""
    with translated(f"cannot read dealer {name!r}"):
        found = _dealer(name, "see `fsm-server dealers list`")
        return DealerInfo(
            name=found.name, customers=Customer.select().where(Customer.dealer == found.id).count()
        )


def get_customer(name: str) -> CustomerInfo:
    found = [c for c in list_customers(names=(name,))]
    if not found:
        raise TenancyError(f"no customer {name!r}", hint="see `fsm-server customers list`")
    return found[0]


def list_customers(
    *, dealer: str | None = None, names: tuple[str, ...] | None = None, ids: frozenset[int] | None = None
) -> list[CustomerInfo]:
    """Customers (of ``dealer``, of ``names``, of ``ids`` when given) with their sites and how
    many clients and devices each has; four queries whatever their number."""
    with translated("cannot list customers"):
        q = (
            Customer.select(Customer.id, Customer.name, Dealer.name.alias("dealer_name"))
            .join(Dealer, JOIN.LEFT_OUTER, on=(Customer.dealer == Dealer.id))
            .order_by(Customer.name)
        )
        if dealer is not None:
            q = q.where(Dealer.name == dealer)
        if names is not None:
            q = q.where(Customer.name.in_(list(names)))
        if ids is not None:
            q = q.where(Customer.id.in_(list(ids)))
        rows = list(cast("Iterable[_ListedCustomer]", q.objects()))
        wanted = [r.id for r in rows]
        sites: dict[int, list[str]] = {}
        for s in Site.select(Site.customer, Site.name).where(Site.customer.in_(wanted)).order_by(Site.name):
            sites.setdefault(s.customer_id, []).append(s.name)
        clients = dict(
            cast(
                "Iterable[tuple[int, int]]",
                Client.select(Client.customer, fn.COUNT(Client.id))
                .where(Client.customer.in_(wanted))
                .group_by(Client.customer)
                .tuples(),
            )
        )
        devices = dict(
            cast(
                "Iterable[tuple[int, int]]",
                Device.select(Device.customer, fn.COUNT(Device.id))
                .where(Device.customer.in_(wanted))
                .group_by(Device.customer)
                .tuples(),
            )
        )
    return [
        CustomerInfo(
            name=r.name,
            dealer=r.dealer_name,
            sites=sites.get(r.id, []),
            clients=clients.get(r.id, 0),
            devices=devices.get(r.id, 0),
        )
        for r in rows
    ]


__all__ = [
    "MAX_NAME",
    "CustomerInfo",
    "DealerInfo",
    "add_customer",
    "add_dealer",
    "assign_dealer",
    "get_customer",
    "get_dealer",
    "list_customers",
    "list_dealers",
]

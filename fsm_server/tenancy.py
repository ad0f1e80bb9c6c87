"""Tenancy, the data rule: whose rows a client's reports may write, decided here and only here.

* A client belongs to one customer. The dealer names it (`fsm-server clients add NAME --key FILE
  --customer C`, or `clients set-customer NAME C`). A client enrolled without one is bound to the
  customer its first loaded report names, if no other client reports for that customer yet
  (joining an existing customer takes the dealer's word). What a report claims never changes
  the binding: a report naming another customer is refused (``CustomerMismatch``, quarantined as
  ``customer_mismatch``, loaded by `quarantine retry` once the dealer has set the customer).
* A device is (customer, identity) with the identity of ``fsm_protocol.identity``: the same
  serial under two customers is two devices, and a client's readings only ever reach devices of
  its own customer. Within that customer a printer may move between clients and sites freely.
* Reports (and a later portal) scope by the device's customer: ``device.customer_id``.

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> from fsm_server.db.models import Client
>>> from datetime import UTC, datetime
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> c = Client.create(name="acme-hq", public_key="k", fingerprint="f", added_at=datetime.now(UTC))
>>> report_customer(c.id, "ACME") == Tenancy(customer_id("ACME"), None)
True
>>> report_customer(c.id, "Globex") == Tenancy(customer_id("ACME"), "Globex")
True
"""

from __future__ import annotations

from typing import NamedTuple

from .db.models import Client, Customer
from .errors import CustomerMismatch


class Tenancy(NamedTuple):
    """Whose a report is: its client's customer, and the other customer it named, if it did."""

    customer_id: int
    claimed: str | None  # None: the report named the client's own customer


def customer_id(name: str) -> int:
    """The id of customer ``name``, made when new (``""``: the reports that name no customer)."""
    Customer.insert(name=name).on_conflict_ignore().execute()
    return int(Customer.get(Customer.name == name).id)


def report_customer(client_id: int, claimed: str) -> Tenancy:
    """The customer a report of ``client_id`` is loaded under: the client's own, with ``claimed``
    kept when it names another. Binds an unbound client to ``claimed`` when no other client reports
    for it yet; CustomerMismatch otherwise. Call inside the load's transaction, so that the binding
    and the first report commit together."""
    claimed_id = customer_id(claimed)
    client = Client.select(Client.name, Client.customer).where(Client.id == client_id).get()
    if client.customer_id is None:
        if Client.select().where(Client.customer == claimed_id).exists():
            # joining a customer that has clients takes the dealer's word, not the report's
            raise CustomerMismatch(
                f"client {client.name!r} is not enrolled under a customer and its first report names "
                f"customer {claimed!r}, which other clients report for; a client joins an existing "
                f"customer only when the dealer says so",
                hint=f"if it reads {claimed!r}'s printers: `fsm-server clients set-customer {client.name} "
                f"{claimed!r}`, then `fsm-server quarantine retry ID`",
            )
        Client.update(customer=claimed_id).where(Client.id == client_id).execute()
        return Tenancy(claimed_id, None)
    if client.customer_id == claimed_id:
        return Tenancy(claimed_id, None)
    # the dealer's word stands: the readings are the enrolled customer's, the claim is flagged
    return Tenancy(client.customer_id, claimed)


__all__ = ["Tenancy", "customer_id", "report_customer"]

"""Two dealers with two customers each, fed through the real pipeline, for the portal tests.

Dealer North serves ACME and Initech, dealer South serves Globex and Umbrella. Each customer has
one client (``<customer>-1``) reading two printers over ten days; Globex's second printer has
the same serial as ACME's first (the same printer model sold twice, or a printer that moved), so
a leak between tenants would show. Hostile text sits in one ACME printer's model, location and
supply description. Each client's last report names another customer ("Elsewhere": loaded under
the client's own and flagged); one quarantined report per customer (created days ahead of the
server's clock: implausible) and one from an unknown sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ServerKit, mails_for, make_client, seal
from fsm_protocol.schema import Report
from fsm_server.customers import add_customer, add_dealer
from fsm_server.db.models import Device, Quarantine
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

DEALERS = {"North": ("ACME", "Initech"), "South": ("Globex", "Umbrella")}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DAYS = 10


@dataclass(frozen=True)
class Viewer:
    """A portal principal as scoping sees it (the web app's Principal has the same fields)."""

    role: str
    dealer: str | None = None
    customers: tuple[str, ...] = ()
    name: str = "tester"
    user_id: int = 0


@dataclass
class Fleet:
    start: datetime
    #: customer -> its devices' ids; customer -> its client's name; customer -> quarantine ids
    devices: dict[str, list[int]] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)
    stranger_quarantine: int = 0

    def customer_of_dealer(self, dealer: str) -> tuple[str, ...]:
        return DEALERS[dealer]

    def viewers(self) -> dict[str, Viewer]:
        return {
            "admin": Viewer("admin"),
            "north": Viewer("dealer", dealer="North"),
            "south": Viewer("dealer", dealer="South"),
            "acme": Viewer("customer", customers=("ACME",)),
            "globex": Viewer("customer", customers=("Globex",)),
        }

    def visible(self, viewer: Viewer) -> set[str]:
        """The customers ``viewer`` must see."""
        if viewer.role == "admin":
            return set(self.devices)
        if viewer.role == "dealer":
            return set(DEALERS[viewer.dealer or ""])
        return set(viewer.customers)


def build_fleet(pipeline: Pipeline, registry: Registry, server: ServerKit, tmp_path: Path) -> Fleet:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    fleet = Fleet(start=start)
    for dealer, customers in DEALERS.items():
        add_dealer(dealer)
        for customer in customers:
            add_customer(customer, dealer=dealer, sites=("HQ",))
    for n, customer in enumerate(c for cs in DEALERS.values() for c in cs):
        kit = make_client(tmp_path / customer, f"{customer.lower()}-1")
        registry.add(kit.name, kit.pub_path, customer=customer)
        fleet.clients[customer] = kit.name
        feeder = Feeder(pipeline, kit, server, customer=customer, site="HQ")
        serials = (
            "SHARED-1" if customer in ("ACME", "Globex") else f"{customer[:3].upper()}-1",
            f"{customer[:3].upper()}-2",
        )
        for day in range(DAYS):
            at = start + timedelta(days=day, hours=1)
            devs = []
            for k, serial in enumerate(serials):
                hostile = customer == "ACME" and k == 1
                devs.append(
                    reading(
                        serial,
                        at,
                        ip=f"10.{n}.0.{10 + k}",
                        total=1000 * (n + 1) + 150 * day + k,
                        supplies=[
                            ("toner", "black", max(5.0, 90.0 - 9 * day - 20 * k)),
                            ("toner", "cyan", 70.0),
                        ],
                        alerts=("jam",) if day >= DAYS - 2 and k == 0 else (),
                        model=HOSTILE if hostile else "MP C3004",
                        location=HOSTILE if hostile else "2nd floor",
                    )
                )
            if customer == "ACME":
                for dev in devs:
                    if dev.serial == "ACM-2":
                        for s in dev.supplies:
                            s.description = HOSTILE
            feeder.send(at, devs)
        fleet.devices[customer] = [
            d.id
            for d in Device.select(Device.id)
            .join_from(Device, Device.customer.rel_model)
            .where(Device.customer.rel_model.name == customer)
            .order_by(Device.id)
        ]
        # a report naming another customer: loaded under this client's customer, flagged
        wrong = Report(
            client_id=kit.name,
            customer="Elsewhere",
            site="HQ",
            seq=feeder.seq + 1,
            kind="periodic",
            created_at=start + timedelta(days=DAYS),
            devices=[],
        )  # type: ignore[arg-type]
        [mail] = mails_for(seal(wrong, kit, server))
        verdict = pipeline.process(mail, source="test")
        assert verdict.outcome == "loaded" and "Elsewhere" in verdict.detail, verdict
        # a report from days ahead of the server's clock: quarantined as implausible
        ahead = Report(
            client_id=kit.name,
            customer=customer,
            site="HQ",
            seq=feeder.seq + 2,
            kind="periodic",
            created_at=start + timedelta(days=DAYS + 3),
            devices=[],
        )  # type: ignore[arg-type]
        [mail] = mails_for(seal(ahead, kit, server))
        verdict = pipeline.process(mail, source="test")
        assert (verdict.outcome, verdict.reason) == ("quarantined", "implausible"), verdict
        fleet.quarantine[customer] = Quarantine.get(Quarantine.client_name == kit.name).id
    stranger = make_client(tmp_path / "stranger", "stranger-1")
    report = Report(
        client_id=stranger.name,
        customer="ACME",
        site="HQ",
        seq=1,
        kind="periodic",
        created_at=start,
        devices=[],
    )  # type: ignore[arg-type]
    [mail] = mails_for(seal(report, stranger, server))
    assert pipeline.process(mail, source="test").outcome == "quarantined"
    fleet.stranger_quarantine = Quarantine.get(Quarantine.client_name == stranger.name).id
    return fleet


__all__ = ["DAYS", "DEALERS", "HOSTILE", "Fleet", "Viewer", "build_fleet"]

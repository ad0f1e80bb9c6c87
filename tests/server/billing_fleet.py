"""Billing periods on the portal tests' fleet (portal_fleet): one period per customer over the
fleet's ten days, and a counter reset on ACME's first printer that the period flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal_fleet import DAYS, Fleet
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_protocol.keys import CLIENT_KEY_FILE, CLIENT_PUB_FILE, load_signing_key
from fsm_server.billing import workflow
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline

#: the pages ACME's first printer counted before its board was replaced and after
RESET_TO = 60


def add_reset(fleet: Fleet, pipeline: Pipeline, server: ServerKit, tmp_path: Path) -> None:
    """ACME's first printer (serial SHARED-1) reports a total of 60 half a day after its last read:
    a new board, which ingest flags ``reset``."""
    directory = tmp_path / "ACME"  # where build_fleet made ACME's client keys
    kit = ClientKit(
        name=fleet.clients["ACME"],
        signing_key=load_signing_key(directory / CLIENT_KEY_FILE),
        pub_path=directory / CLIENT_PUB_FILE,
    )
    feeder = Feeder(
        pipeline, kit, server, customer="ACME", site="HQ", seq=DAYS + 1
    )  # after its quarantined one
    at = fleet.start + timedelta(days=DAYS - 1, hours=12)
    feeder.send(at, [reading("SHARED-1", at, ip="10.0.0.10", total=RESET_TO)])


def collect_periods(db: Database, fleet: Fleet) -> dict[str, int]:
    """customer -> the id of its period from half a day into the fleet's first day to its end."""
    start, end = fleet.start + timedelta(hours=12), fleet.start + timedelta(days=DAYS)
    now = datetime.now(UTC)
    return {
        customer: workflow.collect_period(db, customer, start=start, end=end, now=now).id
        for customer in fleet.devices
    }


__all__ = ["RESET_TO", "add_reset", "collect_periods"]

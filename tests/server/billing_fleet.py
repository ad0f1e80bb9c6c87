"""Billing periods on the portal tests' fleet (portal_fleet): one period per customer over the
fleet's ten days, and a counter reset on ACME's first printer that the period flags."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal_fleet import DAYS, Fleet
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_protocol.keys import CLIENT_KEY_FILE, CLIENT_PUB_FILE, load_signing_key
from fsm_server.billing import workflow
from fsm_server.config import ReportsSection
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.reports.csv import METERS_HEADER, meter_cells, write_table
from fsm_server.reports.meters import MeterRow
from fsm_server.reports.scope import devices_in_scope

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from fill import END, fill  # the bench's fleet, filled through the real loader

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


def filled_periods(db: Database) -> dict[str, int]:
    """customer -> its period over the last day of the bench's fleet (``bench/fill.py``, two days
    of reports through the real loader): "Customer 000" of some 1,130 devices (a few missed a
    report), "Customer 001" of some 13. In each, one meter is corrected and another excluded (the
    flagged view lists them)."""
    fill(db, devices=1143, days=2, per_client=113, progress=False)
    out = {}
    for customer in ("Customer 000", "Customer 001"):
        view = workflow.collect_period(db, customer, start=END - timedelta(days=1), end=END, now=END)
        meters = workflow.show(view.id).meters
        workflow.correct(meters[-1].id, "fill", "pages from the service report", usage=10)
        workflow.exclude(meters[len(meters) // 2].id, "fill", "device returned")
        out[customer] = view.id
    return out


def report_csv(period_id: int, settings: ReportsSection) -> str:
    """The CSV the meters report's writer makes of a period's billed meters: what the export's
    text, made a line at a time from shared pieces, must equal byte for byte."""
    view = workflow.show(period_id)
    devices = devices_in_scope(view.customer)
    out = io.StringIO()
    rows = (
        meter_cells(
            MeterRow(
                device=devices[m.device_id],
                counter=m.counter,
                meter=settings.meter_names.get(m.counter, m.counter),
                start_at=m.start_at,
                start_value=m.start_value,
                end_at=m.end_at,
                end_value=m.end_value,
                usage=m.usage,
                reads=0,
                flags=[*m.flags, *(["corrected"] if m.corrections else [])],
            )
        )
        for m in view.meters
        if not m.excluded
    )
    write_table(out, METERS_HEADER, rows)
    return out.getvalue()


__all__ = ["RESET_TO", "add_reset", "collect_periods", "filled_periods", "report_csv"]

"""Billing on a database filled by the real ingest pipeline (SQLite and PostgreSQL): periods, start
and end meters with the envelope each came from, flags, corrections beside the original,
approval refused while a flag is unsettled, and the signed export `billing verify` checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee
import pytest
from billing_fleet import report_csv
from click.testing import CliRunner
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_protocol.keys import generate_server_signing_keys, load_signing_key, load_verify_key
from fsm_server.backup import restore, take_backup
from fsm_server.billing import export, workflow
from fsm_server.billing.models import BillingCorrection, BillingMeter, BillingPeriod
from fsm_server.billing.periods import Plan, last_complete_period, period_containing
from fsm_server.config import ReportsSection
from fsm_server.db.connect import Database
from fsm_server.db.models import Client, Device, Envelope
from fsm_server.errors import BillingError
from fsm_server.ingest.pipeline import Pipeline

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, tzinfo=UTC)
SETTINGS = ReportsSection(meter_names={"total": "TOTAL_CLICKS"})


def day(n: int) -> datetime:
    return OCT + timedelta(days=n, hours=12)


def a_total(n: int) -> int:
    """A: 100 pages a day; its board was replaced on day 14 (the counter restarts at 60)."""
    return 10_000 + 100 * (n + 6) if n < 14 else 60 + 100 * (n - 14)


@pytest.fixture
def october(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """A reset on 10-15; B clean all month; C stops after 10-20 (no end read); E's colour counter
    counts more pages than its total."""
    feed = Feeder(pipeline, client_kit, server_kit)
    for n in range(-3, 33):
        devices = [
            reading("A1", day(n), ip="10.0.0.11", total=a_total(n)),
            reading("B2", day(n) + timedelta(minutes=1), ip="10.0.0.12", total=500 + 40 * n),
        ]
        if n <= 19:
            devices.append(reading("C3", day(n) + timedelta(minutes=2), ip="10.0.0.13", total=9000 + 10 * n))
        e = reading("E5", day(n) + timedelta(minutes=3), ip="10.0.0.15", total=1000 + 10 * n)
        e.counters["total_color"] = 1000 + 30 * n
        devices.append(e)
        feed.send(day(n) + timedelta(minutes=10), devices)
    return feed


def test_periods_monthly_on_any_day_and_quarterly() -> None:
    monthly = Plan(anchor_day=31)
    assert period_containing(monthly, datetime(2027, 3, 5, tzinfo=UTC)) == (
        datetime(2027, 2, 28, tzinfo=UTC),
        datetime(2027, 3, 31, tzinfo=UTC),
    )
    assert last_complete_period(Plan(), NOW) == (OCT, NOV)
    quarterly = Plan(cadence="quarterly", anchor_day=10, anchor_month=2)
    assert period_containing(quarterly, datetime(2026, 11, 9, tzinfo=UTC)) == (
        datetime(2026, 8, 10, tzinfo=UTC),
        datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert last_complete_period(quarterly, datetime(2026, 11, 10, tzinfo=UTC)) == (
        datetime(2026, 8, 10, tzinfo=UTC),
        datetime(2026, 11, 10, tzinfo=UTC),
    )
    with pytest.raises(BillingError, match="not a day of the month"):
        Plan(anchor_day=32)


def _meter(view: workflow.PeriodView, serial: str, counter: str = "total") -> workflow.MeterView:
    ids = {d.serial: d.id for d in Device.select()}
    return next(m for m in view.meters if m.device_id == ids[serial] and m.counter == counter)


def test_a_period_is_collected_flagged_corrected_approved_exported_and_verified(
    db: Database, october: Feeder, tmp_path: Path
) -> None:
    collected = workflow.collect_period(db, "ACME", now=NOW, settings=SETTINGS)
    assert (collected.start, collected.end, collected.state, collected.meters) == (OCT, NOV, "collected", [])
    view = workflow.show(collected.id)
    assert collected.tally == view.tally == workflow.Tally(meters=9, devices=4, flagged=5, to_settle=5)
    assert len(view.meters) == 9

    a, b, c = _meter(view, "A1"), _meter(view, "B2"), _meter(view, "C3")
    e_colour = _meter(view, "E5", "total_color")
    assert a.flags == ["reset"] and b.flags == [] and c.flags == ["missing_end"]
    assert e_colour.flags == ["colour_over_total"] and _meter(view, "E5").flags == []
    assert (b.start_value, b.end_value, b.usage) == (500 + 40 * -1, 500 + 40 * 30, 40 * 31)
    assert c.end_at == day(19) + timedelta(minutes=2)  # its last read
    # provenance: the envelope that carried B's end read (day 30's report, seq 34)
    env = Envelope.get(Envelope.seq == 34)
    assert b.end_source == ("acme-hq", 34, env.sha256) and b.start_source[1] == 3
    assert Client.get(Client.id == env.client_id).name == "acme-hq"

    with pytest.raises(BillingError, match="5 flagged meter"):
        workflow.approve(view.id, "dealer")
    with pytest.raises(BillingError, match="needs a note"):
        workflow.correct(a.id, "dealer", "  ")
    fixed = workflow.correct(
        a.id, "dealer", "board replaced on the 14th; 3,060 pages per service report", usage=3060
    )
    assert (fixed.usage, fixed.collected_usage, fixed.collected_start) == (3060, a.usage, a.start_value)
    stored = BillingMeter.get(BillingMeter.id == a.id)
    assert (stored.usage, stored.start_value) == (a.usage, a.start_value)  # the original stays
    assert BillingCorrection.select().count() == 1
    workflow.exclude(c.id, "dealer", "device returned on the 20th; billed on its final invoice")
    with pytest.raises(BillingError, match="3 flagged meter"):  # the black counters of A and C, E's colour
        workflow.approve(view.id, "dealer")
    workflow.correct(_meter(view, "A1", "total_black").id, "dealer", "board replaced", usage=1530)
    workflow.exclude(_meter(view, "C3", "total_black").id, "dealer", "device returned")
    workflow.correct(e_colour.id, "dealer", "colour counter misread by the old firmware", usage=0)

    workflow.validate(view.id, "customer@acme")
    approved = workflow.approve(view.id, "dealer", now=NOW)
    assert approved.state == "approved" and approved.approved_by == "dealer"
    assert approved.tally == workflow.Tally(meters=9, devices=4, flagged=5, corrected=3, excluded=2)
    with pytest.raises(BillingError, match="no longer change"):
        workflow.correct(b.id, "dealer", "too late")

    keys = tmp_path / "keys"
    private, public = generate_server_signing_keys(keys)
    assert private.stat().st_mode & 0o777 == 0o600
    text, manifest = export.build(view.id, load_signing_key(private), SETTINGS, now=NOW)
    assert workflow.show(view.id).state == "exported"
    assert text == report_csv(view.id, SETTINGS)
    lines = text.splitlines()
    assert lines[0].startswith("customer,site,client") and not any(",C3," in x for x in lines)
    a_line = next(x for x in lines if ",A1," in x and "TOTAL_CLICKS" in x)
    assert ",3060,reset corrected" in a_line
    out = tmp_path / "oct.csv"
    out.write_text(text, newline="")
    export.manifest_path(out).write_bytes(manifest)
    checked = export.verify(out, load_verify_key(public))
    assert checked.excluded[0][0] == c.id and len(checked.rows) == len(lines) - 1
    row = next(r for r in checked.rows if r.meter_id == b.id)
    assert (row.end.client, row.end.seq, row.end.sha256) == ("acme-hq", 34, env.sha256)

    # one digit changed in the CSV: refused; in the manifest: refused
    out.write_text(text.replace(",3060,", ",3061,", 1), newline="")
    with pytest.raises(BillingError, match="not the CSV the manifest was signed for"):
        export.verify(out, load_verify_key(public))
    out.write_text(text, newline="")
    export.manifest_path(out).write_bytes(
        manifest.replace(b'"seq":34', b'"seq":35', 1)
        if b'"seq":34' in manifest
        else manifest.replace(b"34", b"35", 1)
    )
    with pytest.raises(BillingError, match="signature"):
        export.verify(out, load_verify_key(public))


def test_meters_to_settle_are_excluded_at_once_by_flag(db: Database, october: Feeder) -> None:
    period = workflow.collect_period(db, "ACME", now=NOW).id
    a_black = _meter(workflow.show(period), "A1", "total_black")
    workflow.correct(a_black.id, "dealer", "board replaced", usage=1530)
    with pytest.raises(BillingError, match="needs a note"):
        workflow.exclude_to_settle(period, "dealer", " ")
    with pytest.raises(BillingError, match="no meter flag named nonsense"):
        workflow.exclude_to_settle(period, "dealer", "x", flags=["reset", "nonsense"])
    assert workflow.exclude_to_settle(period, "dealer", "returned on the 20th", flags=["missing_end"]) == 2
    assert workflow.exclude_to_settle(period, "dealer", "again", flags=["missing_end"]) == 0
    view = workflow.show(period)
    assert [m.counter for m in view.blocking] == ["total", "total_color"]  # A's total, E's colour
    assert view.tally == workflow.Tally(meters=9, devices=4, flagged=5, to_settle=2, corrected=1, excluded=2)
    assert {m.exclude_note for m in view.meters if m.excluded} == {"returned on the 20th"}
    assert workflow.exclude_to_settle(period, "dealer", "checked with the customer") == 2
    corrected = next(m for m in workflow.show(period).meters if m.id == a_black.id)
    assert not corrected.excluded  # a corrected meter is settled: left as corrected
    workflow.approve(period, "dealer", now=NOW)
    with pytest.raises(BillingError, match="no longer change"):
        workflow.exclude_to_settle(period, "dealer", "too late")


def test_a_meter_refers_to_its_period_and_device_as_a_foreign_key_would(
    db: Database, october: Feeder
) -> None:
    """Foreign keys on SQLite, statement-level triggers on PostgreSQL (db.triggers): the same rules."""
    period = workflow.collect_period(db, "ACME", now=NOW).id
    row = BillingMeter.select().where(BillingMeter.period == period).order_by(BillingMeter.id).first()
    cols = {"counter": "extra", "start_at": OCT, "start_value": 1, "end_at": NOV, "end_value": 2, "usage": 1}
    src = {
        f"{end}_{k}": v for end in ("start", "end") for k, v in (("client", "c"), ("seq", 1), ("sha256", "0"))
    }
    for period_id, device_id in ((period + 1000, row.device_id), (period, 10**6)):
        with pytest.raises(peewee.IntegrityError), db.peewee.atomic():
            BillingMeter.insert(period=period_id, device=device_id, **cols, **src).execute()
    with pytest.raises(peewee.IntegrityError), db.peewee.atomic():
        BillingMeter.update(device=10**6).where(BillingMeter.id == row.id).execute()
    workflow.correct(row.id, "dealer", "checked", usage=5)
    device = Device.get_by_id(row.device_id)
    per_device = BillingMeter.select().where(BillingMeter.device == device.id).count()
    assert per_device >= 1
    total = BillingMeter.select().count()
    with db.peewee.atomic():  # its reads first: a device with reads is not deleted
        db.peewee.execute_sql(f"DELETE FROM reading WHERE device_id = {db.peewee.param}", [device.id])
        device.delete_instance()
    assert BillingMeter.select().count() == total - per_device and BillingCorrection.select().count() == 0
    BillingPeriod.delete().where(BillingPeriod.id == period).execute()
    assert BillingMeter.select().count() == 0


def test_a_backup_of_billed_periods_restores_parents_before_meters(
    db: Database, october: Feeder, tmp_path: Path
) -> None:
    """On PostgreSQL no foreign key orders billing_meter after billing_period and device: the
    backup knows the references the triggers keep (else the meters' load is refused)."""
    period = workflow.collect_period(db, "ACME", now=NOW).id
    workflow.correct(workflow.show(period).meters[0].id, "dealer", "from the service report", usage=7)
    before = workflow.show(period)
    backup = take_backup(db, tmp_path / "backups")
    names = [t.name for t in backup.manifest.tables]
    assert names.index("billing_period") < names.index("billing_meter") < names.index("billing_correction")
    assert names.index("device") < names.index("billing_meter")
    restore(backup.path, db, force=True)
    assert workflow.show(period) == before


def test_cli_closes_a_period_and_verify_refuses_a_changed_digit(
    db: Database, october: Feeder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsm_server.cli import main

    data = tmp_path / "server"
    (data / "keys").mkdir(parents=True)
    generate_server_signing_keys(data / "keys")
    monkeypatch.setenv("FSM_DATABASE_URL", db.url)
    run = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        r = run.invoke(main, ["--data-dir", str(data), "billing", *args])
        assert r.exit_code == code, r.output
        return r.output

    view = workflow.show(workflow.collect_period(db, "ACME", now=NOW).id)
    reset = next(m.id for m in view.blocking if "reset" in m.flags)  # read before the CLI binds the models
    assert "reset" in cli("show", str(view.id))
    to_settle = cli("show", str(view.id), "--to-settle")
    assert "missing_end" in to_settle and "colour_over_total" in to_settle
    assert "flagged meter" in cli("approve", str(view.id), "--by", "dealer", code=1)
    cli("exclude", str(reset), "--note", "checked on site", "--by", "dealer")
    assert "no meter flag named reboot" in cli(
        "exclude-to-settle", str(view.id), "--flag", "reboot", "--note", "x", "--by", "dealer", code=1
    )
    out = cli(
        "exclude-to-settle", str(view.id), "--flag", "missing_end", "--note", "returned", "--by", "dealer"
    )
    assert "2 meter(s) excluded" in out  # C3's two counters
    assert "to settle: 2" in cli(
        "exclude-to-settle", str(view.id), "--flag", "jump", "--note", "-", "--by", "d"
    )
    assert "2 meter(s) excluded" in cli(
        "exclude-to-settle", str(view.id), "--note", "checked", "--by", "dealer"
    )
    cli("approve", str(view.id), "--by", "dealer")
    out = tmp_path / "oct.csv"
    cli("export", str(view.id), "--out", str(out))
    assert "ok:" in cli("verify", str(out))
    text = out.read_text()
    i = next(i for i, ch in enumerate(text) if ch.isdigit() and text[i - 1] == ",")
    out.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :], newline="")
    assert "not the CSV" in cli("verify", str(out), code=1)

"""`fsm-server report` on real files: a pipeline-filled database, CSV/HTML/JSON out."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from portal_fleet import DEALERS, build_fleet
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server.cli import main
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


@pytest.fixture
def loaded(
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    feed = Feeder(pipeline, client_kit, server_kit)
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    for n in range(-2, 33):
        at = start + timedelta(days=n)
        feed.send(at, [reading("A1", at, total=1000 + 50 * n, supplies=[("toner", "black", 90 - n)])])


def run(tmp_path: Path, *args: str) -> str:
    config = tmp_path / "server.toml"
    config.write_text('[reports.meter_names]\ntotal = "BILL_TOTAL"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "--data-dir", str(tmp_path / "data"), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_report_meters_as_csv_uses_the_erp_meter_names(loaded: None, tmp_path: Path) -> None:
    out = run(tmp_path, "report", "meters", "--from", "2026-10-01", "--to", "2026-10-31", "--format", "csv")
    rows = {r["meter"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"BILL_TOTAL", "total_black"}
    assert (rows["BILL_TOTAL"]["start"], rows["BILL_TOTAL"]["end"], rows["BILL_TOTAL"]["usage"]) == (
        "950",
        str(1000 + 50 * 30),
        str(50 * 31),
    )


def test_report_writes_html_to_out_and_picks_the_format_from_the_name(loaded: None, tmp_path: Path) -> None:
    run(
        tmp_path,
        "report",
        "supplies",
        "--from",
        "2026-10-01",
        "--to",
        "2026-11-02",
        "--out",
        str(tmp_path / "s.html"),
    )
    page = (tmp_path / "s.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    run(tmp_path, "report", "inventory", "--customer", "ACME", "--out", str(tmp_path / "i.json"))
    assert msgspec.json.decode((tmp_path / "i.json").read_bytes())["rows"][0]["device"]["serial"] == "A1"


def test_a_bad_date_is_an_error_with_a_hint(loaded: None, tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config), "report", "meters", "--from", "yesterday"])
    assert result.exit_code == 1
    assert "error: date 'yesterday' is not YYYY-MM-DD" in result.stderr
    assert "hint:" in result.stderr


def test_a_dealer_wide_report_holds_its_customers_devices_and_no_other_dealers(
    pipeline: Pipeline,
    registry: Registry,
    server_kit: ServerKit,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    build_fleet(pipeline, registry, server_kit, tmp_path)  # North: ACME, Initech; South: Globex, Umbrella

    def rows(*args: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(run(tmp_path, "report", *args, "--format", "csv"))))

    everything = rows("inventory")
    assert {r["customer"] for r in everything} == {c for cs in DEALERS.values() for c in cs}
    for dealer, customers in DEALERS.items():
        mine = rows("inventory", "--dealer", dealer)
        # SHARED-1 is a serial of one customer of each dealer: each dealer gets its own device only
        assert sorted((r["customer"], r["serial"]) for r in mine) == sorted(
            (r["customer"], r["serial"]) for r in everything if r["customer"] in customers
        )
        assert {r["customer"] for r in rows("supplies", "--dealer", dealer)} == set(customers)
    run(tmp_path, "report", "meters", "--dealer", "North", "--out", str(tmp_path / "north.html"))
    page = (tmp_path / "north.html").read_text()
    assert "all customers of North" in page and "Initech" in page and "Globex" not in page


def test_a_dealer_report_refuses_a_customer_beside_it_and_an_unknown_dealer(
    loaded: None, tmp_path: Path
) -> None:
    def refused(*args: str) -> str:
        result = CliRunner().invoke(
            main, ["--data-dir", str(tmp_path / "data"), "report", "inventory", *args]
        )
        assert result.exit_code == 1, result.output
        assert "hint:" in result.stderr and result.stdout == ""
        return result.stderr

    assert "give --customer or --dealer, not both" in refused("--customer", "ACME", "--dealer", "North")
    assert "error: no dealer 'Nowhere'\nhint: see `fsm-server dealers list`" in refused("--dealer", "Nowhere")

"""Text a printer or client reports, shown in reports: CSV cells that no spreadsheet runs, pages and
consoles that show bidi and control characters defused and long text shortened, device names that
do not repeat the maker. Every string goes in through a sealed report and the real pipeline."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from reports_fleet import Feeder, reading

from fsm_devtools import demo
from fsm_devtools.corpus import (
    BIDI_TEXTS,
    CONTROL_TEXTS,
    FORMULA_TEXTS,
    ClientKit,
    ServerKit,
    hostile_text_device,
)
from fsm_protocol.schema import TEXT_CHARS, Supply, clean_text
from fsm_server import reports
from fsm_server.cli import main
from fsm_server.ingest.pipeline import Pipeline

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
PERIOD = {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=5), "now": T0 + timedelta(days=5)}
#: what a spreadsheet runs as a formula (OWASP), and what a number looks like
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")
#: C0 and C1 controls, DEL and the bidi controls (LRM, RLM, ALM, embeddings, overrides, isolates)
HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
LONG = "L" * 100_000


def feed_hostile(
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    texts: tuple[str, ...],
    *,
    customer: str = "ACME",
) -> None:
    """Three days of readings of one device per text, its model, serial, maker, location, supply and
    alert text set to it; the report's customer and site too when ``customer`` is."""
    feed = Feeder(pipeline, client_kit, server_kit, customer=customer, site=customer)
    for day in range(3):
        at = T0 + timedelta(days=day)
        devices = []
        for i, text in enumerate(texts):
            # the identity columns hold 200 characters (long ones are ingest's business, not these tests')
            short = text[:100]
            d = hostile_text_device(i, observed_at=at, model=short, location=text, supply=text, alert=text)
            devices.append(
                msgspec.structs.replace(
                    d,
                    serial=f"{short}{i}",
                    manufacturer=short,
                    counters={**d.counters, "total": 1000 + 10 * day},
                )
            )
        feed.send(at, devices)


def shown_texts(db_backend: str) -> tuple[str, ...]:
    """The bidi and control texts (ingest removes C0 controls; bidi controls reach the pages)."""
    return (*BIDI_TEXTS, *CONTROL_TEXTS)


def as_cells(texts: tuple[str, ...]) -> set[str]:
    """``texts`` as CSV cells: as ingest keeps printer text (controls removed, tab and CR read as a
    blank), behind the quote OWASP recommends where a spreadsheet would run them."""
    kept = (clean_text(t, TEXT_CHARS)[0] for t in texts)
    return {"'" + t if t.startswith(FORMULA_START) else t for t in kept}


@pytest.mark.parametrize("customer", ["ACME", FORMULA_TEXTS[0]])
def test_no_csv_cell_is_a_formula_a_spreadsheet_would_run(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, customer: str
) -> None:
    feed_hostile(pipeline, client_kit, server_kit, FORMULA_TEXTS, customer=customer)
    for kind in reports.KINDS:
        text = reports.render(reports.build(kind, **PERIOD), "csv")  # type: ignore[arg-type]
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) > 1, kind
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_START) or NUMBER.fullmatch(cell), (kind, cell)
    inventory = list(csv.DictReader(io.StringIO(reports.render(reports.build("inventory", **PERIOD), "csv"))))
    # the text is kept, behind the quote OWASP recommends, which spreadsheets show as text
    assert {r["model"] for r in inventory} == as_cells(FORMULA_TEXTS)
    assert {r["location"] for r in inventory} == as_cells(FORMULA_TEXTS)
    assert {r["customer"] for r in inventory} == {customer if customer == "ACME" else "'" + customer}
    supplies = list(csv.DictReader(io.StringIO(reports.render(reports.build("supplies", **PERIOD), "csv"))))
    assert as_cells(FORMULA_TEXTS) <= {r["supply"] for r in supplies}
    alerts = list(csv.DictReader(io.StringIO(reports.render(reports.build("alerts", **PERIOD), "csv"))))
    assert {r["description"] for r in alerts if r["source"] == "alert"} == as_cells(FORMULA_TEXTS)
    meters = list(csv.DictReader(io.StringIO(reports.render(reports.build("meters", **PERIOD), "csv"))))
    assert {r["start"] for r in meters if r["counter"] == "total"} == {"1000"}  # numbers stay numbers


def test_pages_show_bidi_and_control_characters_defused_and_long_text_short(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, db_backend: str
) -> None:
    texts = (*shown_texts(db_backend), LONG)
    feed_hostile(pipeline, client_kit, server_kit, texts, customer="\u202eEMCA")
    for kind in reports.KINDS:
        page = reports.render(reports.build(kind, with_history=True, **PERIOD), "html")  # type: ignore[arg-type]
        assert not HIDDEN.search(page), (kind, HIDDEN.search(page))
        tooltips = re.findall(r' title="([^"]*)"', page)
        assert all(len(t) <= 1000 for t in tooltips), kind  # the whole text, to a bound, on hover
        shown = re.sub(r' title="[^"]*"', "", page)
        assert "L" * 100 not in shown, kind  # a 100 KB location does not make a 100 KB row
        if kind != "health":
            assert "gnp.exe" in page and "&lt;U+202E&gt;" in page, kind  # there, and visibly marked
        assert len(page) < 200_000, (kind, len(page))


def test_device_names_do_not_repeat_the_maker(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    feed = Feeder(pipeline, client_kit, server_kit)
    for day in range(3):
        at = T0 + timedelta(days=day)
        feed.send(
            at,
            [
                reading(
                    "CNB1",
                    at,
                    ip="10.0.0.31",
                    total=100 + day,
                    manufacturer="HP",
                    model="HP Color LaserJet M452nw",
                    supplies=[("toner", "black", 50.0 - day)],
                    alerts=["jam"],
                ),
                reading(
                    "A7PU",
                    at,
                    ip="10.0.0.32",
                    total=200 + day,
                    manufacturer="Konica Minolta",
                    model="KONICA MINOLTA bizhub C250i",
                    supplies=[("toner", "cyan", 60.0 - day)],
                ),
                reading("E1", at, ip="10.0.0.33", total=300 + day),  # Ricoh MP C3004: the maker is added
            ],
        )
    for kind in ("inventory", "meters", "supplies", "alerts"):
        page = reports.render(reports.build(kind, with_history=True, **PERIOD), "html")  # type: ignore[arg-type]
        assert "HP HP" not in page and "Minolta KONICA" not in page, kind
        assert "HP Color LaserJet M452nw" in page, kind
    inventory = reports.build("inventory", **PERIOD)
    assert sorted(r.device.name for r in inventory.rows) == [  # type: ignore[union-attr]
        "HP Color LaserJet M452nw",
        "KONICA MINOLTA bizhub C250i",
        "Ricoh MP C3004",
    ]


def test_an_empty_or_low_supply_ranks_below_any_percentage(
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Brother reports its drum in percent and its toner only as a state (level -3, then empty):
    the demo's console table shows the toner as its lowest supply, not "Drum Unit 69 %"."""
    feed = Feeder(pipeline, client_kit, server_kit)
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    for day, toner in enumerate(("some_remaining", "low", "empty")):
        at = datetime.now(UTC) - timedelta(hours=3 - day)
        d = reading("E78", at, total=5000 + day, manufacturer="Brother", model="HL-5370DW")
        d = msgspec.structs.replace(
            d,
            supplies=[
                Supply(
                    index=2,
                    description="Black Toner Cartridge",
                    kind="toner",
                    color="black",
                    level=-3,
                    max=-2,
                    percent=None,
                    state=toner,
                ),  # type: ignore[arg-type]
                Supply(
                    index=3,
                    description="Drum Unit",
                    kind="opc",
                    level=17208,
                    max=25000,
                    percent=68.8,
                    state="ok",
                ),
                Supply(
                    index=4,
                    description="Waste",
                    kind="waste_toner",
                    level=-3,
                    max=-2,
                    percent=None,
                    state="some_remaining",
                ),
            ],
        )
        feed.send(at, [d])
        rows = reports.build("supplies").rows  # type: ignore[union-attr]
        if toner == "low":
            [low] = [r for r in rows if r.state == "low"]
            assert reports.supply_rank(low) < min(reports.supply_rank(r) for r in rows if r is not low)
    capsys.readouterr()
    demo.summary(config)  # opens the database as the demo does: the last thing this test does
    out = capsys.readouterr().out
    assert "Black Toner Cartridge empty" in out and "Drum Unit" not in out, out
    [lowest] = reports.lowest_supplies(rows).values()
    assert (lowest.description, lowest.state) == ("Black Toner Cartridge", "empty")


def test_the_devices_command_shows_hostile_text_defused(
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    db_backend: str,
    tmp_path: Path,
) -> None:
    feed_hostile(pipeline, client_kit, server_kit, (*shown_texts(db_backend), "[/bold] not markup", LONG))
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    config = tmp_path / "server.toml"
    config.write_text("")
    args = ["--config", str(config), "--data-dir", str(tmp_path / "data"), "devices"]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert not HIDDEN.search(result.stdout.replace("\n", "")), HIDDEN.search(result.stdout)
    assert "[/bold] not markup" in result.stdout  # printed as it is, not read as rich markup
    assert "<U+202E>" in result.stdout and "L" * 200 not in result.stdout

"""Reports on a database filled by the real ingest pipeline (sealed reports, SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit, make_client
from fsm_server import reports
from fsm_server.config import ReportsSection
from fsm_server.db.models import CounterValue
from fsm_server.errors import ReportError
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOON = timedelta(hours=12)
SETTINGS = ReportsSection(meter_names={"total": "TOTAL_CLICKS", "total_black": "BW_CLICKS"})


def day(n: int) -> datetime:
    """Noon of day ``n`` counted from 2026-10-01 (negative: September)."""
    return OCT + timedelta(days=n) + NOON


def a_total(n: int) -> int:
    """Device A: 100 pages a day from 10,000; its board was replaced on day 14 (counter from 0)."""
    return 10_000 + 100 * (n + 6) if n < 14 else 60 + 100 * (n - 14)


def c_total(n: int) -> int:
    return 2**32 - 1_100 + 200 * (n + 6)  # a 32-bit counter that wraps on day 0


@pytest.fixture
def october(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """Daily reports from 2026-09-25 to 2026-11-03: A all along (reset on 10-15), B added on
    10-10, C removed after 10-20 (and its 32-bit counter wraps), D a one-off in September."""
    feed = Feeder(pipeline, client_kit, server_kit)
    for n in range(-6, 34):
        devices = [reading("A1", day(n), ip="10.0.0.11", total=a_total(n))]
        if n >= 9:
            devices.append(
                reading("B2", day(n) + timedelta(minutes=3), ip="10.0.0.12", total=500 + 40 * (n - 9))
            )
        if n <= 19:
            total = c_total(n) % 2**32
            devices.append(
                reading("C3", day(n) + timedelta(minutes=5), ip="10.0.0.13", total=total, black=total)
            )
        if n == -5:
            devices.append(reading("D4", day(n), ip="10.0.0.14", total=777))
        feed.send(day(n) + timedelta(minutes=10), devices)
    return feed


def rows_by(meters: reports.Meters, counter: str = "total") -> dict[str, reports.MeterRow]:
    return {r.device.serial: r for r in meters.rows if r.counter == counter}  # type: ignore[misc]


def test_meters_give_start_end_and_usage_across_a_reset_an_addition_a_removal_and_a_wrap(
    october: Feeder,
) -> None:
    flags = {
        (c.value, c.flag)
        for c in CounterValue.select().where(CounterValue.flag.is_null(False), CounterValue.name == "total")
    }
    assert (60, "reset") in flags and (c_total(0) % 2**32, "wrap") in flags  # the pipeline flagged them

    m = reports.build("meters", start=OCT, end=NOV, now=datetime(2026, 11, 20, tzinfo=UTC), settings=SETTINGS)
    rows = rows_by(m)
    assert set(rows) == {"A1", "B2", "C3"}  # D4 was not seen from the last read before Oct 1 on

    a = rows["A1"]
    assert (a.start_at, a.start_value) == (day(-1), a_total(-1))  # the last read before the period
    assert (a.end_at, a.end_value) == (day(30), a_total(30))
    # 14 days before the reset, the 60 pages counted since the new board, 16 days after it
    assert a.usage == 100 * 14 + 60 + 100 * 16
    assert a.flags == ["reset"]
    assert a.meter == "TOTAL_CLICKS"

    b = rows["B2"]
    assert (b.start_at, b.start_value) == (day(9) + timedelta(minutes=3), 500)  # its first read
    assert (b.end_value, b.usage) == (500 + 40 * 21, 40 * 21)
    assert b.flags == ["added"]

    c = rows["C3"]
    assert c.end_at == day(19) + timedelta(minutes=5)  # its last read
    assert c.usage == 200 * 20  # across the wrap
    assert c.flags == ["wrap", "removed"] or c.flags == ["removed", "wrap"]
    assert rows_by(m, "total_black")["A1"].meter == "BW_CLICKS"


def test_the_meters_csv_is_what_an_erp_imports(october: Feeder) -> None:
    m = reports.build("meters", start=OCT, end=NOV, settings=SETTINGS)
    table = list(csv.DictReader(io.StringIO(reports.render(m, "csv"))))
    a = next(r for r in table if r["serial"] == "A1" and r["meter"] == "TOTAL_CLICKS")
    assert a == {
        **a,
        "customer": "ACME",
        "site": "HQ",
        "counter": "total",
        "start": str(a_total(-1)),
        "end": str(a_total(30)),
        "usage": "3060",
        "start_at": "2026-09-30T12:00:00Z",
        "end_at": "2026-10-31T12:00:00Z",
        "flags": "reset",
    }
    only = ReportsSection(meter_names={"total": "TOTAL_CLICKS"}, only_mapped_meters=True)
    mapped = reports.build("meters", start=OCT, end=NOV, settings=only)
    assert {r.meter for r in mapped.rows} == {"TOTAL_CLICKS"}


def test_meters_default_to_the_last_complete_month() -> None:
    assert reports.previous_month(datetime(2026, 11, 23, 9, tzinfo=UTC)) == (OCT, NOV)
    assert reports.previous_month(datetime(2026, 1, 5, tzinfo=UTC)) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_inventory_lists_devices_per_customer_with_first_and_last_seen(
    october: Feeder, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    other = make_client(tmp_path / "globex", "globex-1")
    registry.add(other.name, other.pub_path)
    Feeder(pipeline, other, server_kit, customer="Globex", site="Plant").send(
        day(5), [reading("G1", day(5), ip="10.9.0.1", total=5, manufacturer="HP", model="LaserJet M404")]
    )
    inv = reports.build("inventory")
    assert [(r.device.customer, r.device.serial) for r in inv.rows] == [
        ("ACME", "A1"),
        ("ACME", "B2"),
        ("ACME", "C3"),
        ("ACME", "D4"),
        ("Globex", "G1"),
    ]
    a = inv.rows[0]
    assert (a.first_seen, a.last_seen, a.pmd, a.device.location, a.total) == (
        day(-6),
        day(33),
        "ricoh",
        "2nd floor",
        a_total(33),
    )
    only = reports.build("inventory", customer="Globex")
    assert [r.device.serial for r in only.rows] == ["G1"]
    data = msgspec.json.decode(reports.render(only, "json"))
    assert data["kind"] == "inventory" and data["rows"][0]["device"]["client"] == "globex-1"


def test_alerts_show_open_and_closed_episodes_with_durations(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    feed = Feeder(pipeline, client_kit, server_kit)
    t = datetime(2026, 11, 10, 8, tzinfo=UTC)
    feed.send(t, [reading("A1", t, total=1)])
    feed.send(
        t + timedelta(hours=1),
        [reading("A1", t + timedelta(hours=1), total=2, alerts=["jam"], conditions=["jammed"])],
        kind="alert",
    )
    feed.send(t + timedelta(hours=3), [reading("A1", t + timedelta(hours=3), total=3)], kind="alert")
    feed.send(
        t + timedelta(hours=5),
        [reading("A1", t + timedelta(hours=5), total=4, alerts=["door_open"])],
        kind="alert",
    )
    r = reports.build("alerts", start=t, end=t + timedelta(hours=9), now=t + timedelta(hours=9))
    assert [(e.code, e.duration_seconds) for e in r.open] == [("door_open", 4 * 3600)]
    assert r.open[0].severity == "critical" and r.open[0].end is None
    closed = {e.code: e for e in r.recent}
    assert set(closed) == {"jam", "jammed"}
    assert (closed["jam"].start, closed["jam"].end) == (t + timedelta(hours=1), t + timedelta(hours=3))
    assert closed["jammed"].source == "condition" and closed["jam"].source == "alert"
    table = list(csv.DictReader(io.StringIO(reports.render(r, "csv"))))
    first = table[0]
    assert (first["code"], first["status"], first["duration_seconds"]) == ("door_open", "open", "14400")


def test_health_finds_silence_gaps_quarantine_anomalies_and_latency(
    october: Feeder, pipeline: Pipeline
) -> None:
    pipeline.process(b"not a report at all", source="test")
    # report 41 and 42 never arrive; 43 does
    october.seq += 2
    october.send(day(34), [reading("A1", day(34), ip="10.0.0.11", total=a_total(34))])
    now = day(34) + timedelta(hours=40)
    h = reports.build("health", start=OCT, end=now, now=now)
    [client] = h.clients
    assert client.client == "acme-hq" and client.silent  # 40 h since its last report > 24 h + 6 h
    assert client.expected_hours == pytest.approx(24.0)
    silent = {s.device.serial for s in h.silent_devices}
    assert silent == {"A1", "B2", "C3", "D4"}
    assert [(g.first, g.last) for g in h.gaps] == [(41, 42)]
    assert h.quarantine == {"not_fsm_mail": 1}
    assert {(a.device.serial, a.flag) for a in h.anomalies} == {("A1", "reset"), ("C3", "wrap")}
    assert h.latency.count == 0  # everything was ingested today, after this period
    soon = day(34) + timedelta(hours=2)
    fresh = reports.build("health", start=OCT, end=soon, now=soon)
    assert not fresh.clients[0].silent
    assert {s.device.serial for s in fresh.silent_devices} == {"C3", "D4"}


def test_a_customers_health_counts_only_the_quarantine_of_its_own_clients(
    october: Feeder, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    other = make_client(tmp_path / "globex", "globex-1")
    registry.add(other.name, other.pub_path)
    Feeder(pipeline, other, server_kit, customer="Globex", site="Plant").send(
        day(5), [reading("G1", day(5), total=5)]
    )
    forger = make_client(tmp_path / "forger", "globex-1")  # globex-1's name, another key
    forged = Feeder(pipeline, forger, server_kit, customer="Globex", site="Plant", seq=1)
    with pytest.raises(AssertionError, match="quarantined"):
        forged.send(day(6), [reading("G1", day(6), total=6)])
    pipeline.process(b"not a report at all", source="test")  # names no client
    now = day(34)
    everything = reports.build("health", start=OCT, end=now, now=now).quarantine
    assert sum(everything.values()) == 2 and everything["not_fsm_mail"] == 1
    globex = reports.build("health", customer="Globex", start=OCT, end=now, now=now).quarantine
    assert sum(globex.values()) == 1 and "not_fsm_mail" not in globex
    assert reports.build("health", customer="ACME", start=OCT, end=now, now=now).quarantine == {}


def test_ingest_latency_percentiles_run_from_observed_at_to_ingested_at(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    feed = Feeder(pipeline, client_kit, server_kit)
    now = datetime.now(UTC)
    for k in range(1, 11):  # observed 10, 20, ... 100 s before they are ingested
        feed.send(
            now,
            [reading(f"L{k}", now - timedelta(seconds=10 * k), total=k)],
            kind="alert" if k == 1 else "periodic",
        )
    end = datetime.now(UTC) + timedelta(seconds=1)
    lat = reports.build("health", start=now - timedelta(hours=1), end=end).latency
    assert lat.count == 10
    assert lat.p50 == pytest.approx(50, abs=3) and lat.p90 == pytest.approx(90, abs=3)
    assert lat.p99 == lat.max == pytest.approx(100, abs=3)
    assert lat.by_kind["alert"] == pytest.approx(10, abs=3)


def test_every_kind_renders_in_every_format(october: Feeder) -> None:
    for kind in reports.KINDS:
        data = reports.build(kind, start=OCT, end=NOV, settings=SETTINGS, with_history=True)
        html = reports.render(data, "html")
        assert html.startswith("<!DOCTYPE html>") and "</html>" in html
        assert "<script src" not in html and "<link" not in html  # self-contained
        assert reports.render(data, "csv").count("\r\n") >= 1
        assert msgspec.json.decode(reports.render(data, "json"))["kind"] == kind


def test_bad_kind_format_or_period_is_a_report_error() -> None:
    with pytest.raises(ReportError, match="'bills'"):
        reports.build("bills")
    with pytest.raises(ReportError, match="not before its end"):
        reports.build("alerts", start=NOV, end=OCT)
    with pytest.raises(ReportError, match=r"'31\.10\.2026'"):
        reports.parse_when("31.10.2026")
    assert reports.parse_when("2026-10-31", end=True) == NOV
    with pytest.raises(ReportError, match="'totl' is not a canonical counter name"):
        reports.build("meters", settings=ReportsSection(meter_names={"totl": "TOTAL"}))


def test_values_a_device_reports_are_escaped_in_html(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    evil = '<script>alert("x")</script>'
    feed = Feeder(pipeline, client_kit, server_kit)
    t = datetime(2026, 11, 1, tzinfo=UTC)
    for k in range(3):
        at = t + timedelta(days=k)
        feed.send(
            at,
            [
                reading(
                    "X1",
                    at,
                    total=10 + k,
                    model=evil,
                    location=evil,
                    supplies=[("toner", "black", 50.0 - k)],
                    alerts=["jam"],
                )
            ],
        )
    for kind in ("inventory", "supplies", "meters", "alerts"):
        data = reports.build(kind, start=t, end=t + timedelta(days=5), with_history=True)
        page = reports.render(data, "html")
        assert evil not in page, kind
        assert "&lt;script&gt;" in page, kind

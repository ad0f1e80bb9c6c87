"""HTML reports are written as they are produced: the streamed page is the page ``render`` gives
(and, for the meters table, the page the template gave before it was streamed), and writing the
meters page of a fleet holds one chunk of devices, not the page."""

from __future__ import annotations

import io
import re
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import reports_reference as reference
from test_reports import NOV, OCT, SETTINGS, october  # noqa: F401 - the fixture the report tests use
from test_reports_streamed import PERIODS, messy  # noqa: F401 - a fleet with resets and late reports

from fsm_server import reports
from fsm_server.db.connect import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from fill import END, fill  # the bench's fleet, filled through the real loader


def streamed(kind: str, **period: object) -> str:
    out = io.StringIO()
    reports.stream(kind, "html", out, **period)  # type: ignore[arg-type]
    return same(out.getvalue())


def same(page: str) -> str:
    """The page without what pygal makes different each time (charts' random ids, today's date)."""
    return re.sub(
        r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        r"|pygal [0-9.]+ \(\w+\) [^>]* on \d{4}-\d\d-\d\d)",
        "~",
        page,
    )


def before(page: str, report: reports.Meters) -> str:
    """``page`` (streamed, in report order) compared with the meters page of before: the same, but
    for the order of the devices' rows, which the old template's groupby sorted by device id; the
    streamed page's devices are in report order, as in the CSV and JSON (docs/reports.md)."""
    old = same(reference.meters_html(report))
    assert device_blocks(page)[1] == sorted(device_blocks(old)[1])
    serials = re.findall(r'<tr class="group">.*?serial (.*?),', page)
    assert serials == list(dict.fromkeys(r.device.serial or "?" for r in report.rows))
    return device_blocks(old)[0]


def device_blocks(page: str) -> tuple[str, list[str]]:
    """The page without its meters table's rows, and each device's rows."""
    head, _, rest = page.partition("<tbody>\n")
    table, _, tail = rest.partition("</tbody>")
    blocks = ['<tr class="group">' + b for b in table.split('<tr class="group">')[1:]]
    return head + "<tbody>\n</tbody>" + tail, blocks


def test_streamed_html_is_the_rendered_page_on_the_report_tests_fleet(october: object) -> None:  # noqa: F811
    now = datetime(2026, 11, 20, tzinfo=UTC)
    period = {"start": OCT, "end": NOV, "now": now, "settings": SETTINGS}
    for kind in reports.KINDS:
        page = streamed(kind, **period)
        assert page == same(reports.render(reports.build(kind, with_history=True, **period), "html")), kind  # type: ignore[arg-type]
        assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    page = streamed("meters", **period)
    assert device_blocks(page)[0] == before(page, reports.build("meters", with_history=True, **period))  # type: ignore[arg-type]


@pytest.mark.parametrize("period", range(len(PERIODS)))
def test_streamed_meters_html_is_the_page_of_before_on_a_messy_fleet(messy: object, period: int) -> None:  # noqa: F811
    start, end = PERIODS[period]
    now = end + timedelta(hours=6)
    page = streamed("meters", start=start, end=end, now=now, settings=SETTINGS)
    report = reports.build("meters", start=start, end=end, now=now, settings=SETTINGS, with_history=True)
    assert device_blocks(page)[0] == before(page, report)  # type: ignore[arg-type]
    for kind in ("supplies", "alerts"):
        assert streamed(kind, start=start, end=end, now=now) == same(
            reports.render(reports.build(kind, start=start, end=end, now=now, with_history=True), "html")
        )


def peak_writing(kind: str, fmt: str, out: Path) -> int:
    """The peak of Python memory while ``kind`` is streamed as ``fmt`` into ``out``."""
    tracemalloc.start()
    try:
        with out.open("w", encoding="utf-8") as f:
            reports.stream(kind, fmt, f, start=END - timedelta(days=1), end=END, now=END)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_meters_page_of_a_fleet_is_written_holding_a_chunk_not_the_page(
    db: Database, tmp_path: Path
) -> None:
    fill(db, devices=2500, days=2, progress=False)
    csv = peak_writing("meters", "csv", tmp_path / "meters.csv")
    html = peak_writing("meters", "html", tmp_path / "meters.html")
    page = (tmp_path / "meters.html").read_text(encoding="utf-8")
    assert page.count('<tr class="group">') > 2400 and page.endswith("</html>")
    assert page.count("<svg") == 60  # charts of the first MAX_CHARTS devices only
    # the page is ~3 MB; the CSV stream holds the devices in scope (~2 MB) and a chunk of 500 devices'
    # rows; before, the page held every row and the whole page besides (18 MB)
    assert len(page) > 2_500_000
    assert html < csv + 1_500_000, f"{html / 2**20:.1f} MB of Python memory (CSV {csv / 2**20:.1f} MB)"

"""HTML reports opened in a real headless browser (Debian's chromium): they render, with their SVG
charts, and the page logs nothing to the console (no script error, no resource it failed to load)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser_kit import ARGS, CHROMIUM, need_chromium
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server import reports
from fsm_server.ingest.pipeline import Pipeline

#: where the last run keeps its pages and screenshots, for a person to look at
ARTIFACTS = Path("/tmp/fsm-report-browser")


class Chromium:
    """Runs chromium --headless on one file: its rendered DOM, a screenshot, and console lines."""

    def __init__(self, workdir: Path) -> None:
        need_chromium()
        self.workdir = workdir

    def _run(self, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        args = [
            CHROMIUM,
            "--headless",
            *ARGS,
            "--disable-extensions",
            f"--user-data-dir={self.workdir / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
            *extra,
            page.resolve().as_uri(),
        ]
        return subprocess.run(args, capture_output=True, text=True, timeout=90, check=True, cwd=self.workdir)

    def open(self, page: Path, screenshot: Path) -> tuple[str, list[str]]:
        """(rendered DOM, console lines of both runs)."""
        dom = self._run(page, "--dump-dom")
        shot = self._run(page, f"--screenshot={screenshot}")
        # Chromium's own pages (chrome://) log too, e.g. "Slow network is detected" on a loaded machine.
        console = [
            line
            for line in (dom.stderr + shot.stderr).splitlines()
            if ":CONSOLE" in line and "source: chrome://" not in line
        ]
        return dom.stdout, console


@pytest.fixture
def browser(tmp_path: Path) -> Chromium:
    return Chromium(tmp_path)


@pytest.fixture
def fleet(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> datetime:
    """Three weeks of readings of two colour MFPs every 8 hours, one with a jam; returns now."""
    feed = Feeder(pipeline, client_kit, server_kit)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    for k in range(63, -1, -1):
        at = now - timedelta(hours=8 * k)
        days = (63 - k) / 3
        feed.send(
            at,
            [
                reading(
                    "E1",
                    at,
                    ip="10.0.0.21",
                    total=20_000 + int(400 * days),
                    supplies=[
                        ("toner", "black", 90 - 2.5 * days),
                        ("toner", "cyan", 70 - 1.2 * days),
                        ("toner", "magenta", 55 - 0.9 * days),
                        ("toner", "yellow", 80 - 3.1 * days),
                    ],
                ),
                reading(
                    "E2",
                    at,
                    ip="10.0.0.22",
                    total=5_000 + int(120 * days),
                    manufacturer="HP",
                    model="Color LaserJet M452",
                    alerts=["jam"] if k < 2 else [],
                    supplies=[("toner", "black", 30 - 1.3 * days if days < 15 else 100 - 2 * (days - 15))],
                ),
            ],
        )
    return now


def test_html_reports_render_with_charts_and_no_console_errors(
    db: object, fleet: datetime, browser: Chromium, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    charts_expected = {"meters": 2, "supplies": 2, "inventory": 0, "alerts": 0, "health": 0}
    for kind, n_charts in charts_expected.items():
        end = datetime.now(UTC) + timedelta(minutes=1)  # after the fixture's reports were ingested
        data = reports.build(kind, start=fleet - timedelta(days=22), end=end, with_history=True)
        page = tmp_path / f"{kind}.html"
        page.write_text(reports.render(data, "html"))
        shot = tmp_path / f"{kind}.png"
        dom, console = browser.open(page, shot)
        assert console == [], f"{kind}: console output {console}"
        assert dom.count("<svg") == n_charts, kind
        assert re.search(r"<h1>fsm " + kind + " report</h1>", dom)
        if kind == "health":
            assert "No readings ingested in this period" not in dom  # the latency table is there
        if n_charts:
            assert dom.count('class="line reactive') >= n_charts  # pygal drew the series lines
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
        shutil.copy(shot, ARTIFACTS / shot.name)
        shutil.copy(page, ARTIFACTS / page.name)


def test_a_report_prints_to_pdf(db: object, fleet: datetime, browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "supplies.html"
    page.write_text(reports.render(reports.build("supplies", with_history=True), "html"))
    pdf = tmp_path / "supplies.pdf"
    browser._run(page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 1  # at least one page
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / pdf.name)


def test_the_console_check_catches_a_broken_page(browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="missing.png"><script>undefinedCall()</script></body></html>'
    )
    _dom, console = browser.open(page, tmp_path / "broken.png")
    assert any("undefinedCall" in line for line in console), console

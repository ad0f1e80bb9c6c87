"""Charts that read right: every label of a time axis tells its moment apart (readings minutes or
months apart), and the legend of a colour printer's many supplies never runs into itself, checked
on the page as a browser lays it out. The history goes in through the real pipeline."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from reports_fleet import Feeder, reading
from test_report_browser import ARTIFACTS, Chromium

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_protocol.schema import Supply
from fsm_server import reports
from fsm_server.ingest.pipeline import Pipeline

#: a Xerox AltaLink C8045's supplies and an HP Color LaserJet M452nw's (descriptions as they report them)
XEROX = (
    "Black Toner",
    "Cyan Toner",
    "Magenta Toner",
    "Yellow Toner",
    "Drum Cartridge (R1)",
    "Drum Cartridge (R2)",
    "Drum Cartridge (R3)",
    "Drum Cartridge (R4)",
    "Fuser",
    "Waste Toner Container",
    "Transfer Belt Cleaner",
    "Second Bias Transfer Roll",
)
HP = (
    "Black Cartridge HP CF410A",
    "Cyan Cartridge HP CF411A",
    "Magenta Cartridge HP CF413A This description is longer than 32",
    "Yellow Cartridge HP CF412A",
)
COLORS = ("black", "cyan", "magenta", "yellow")


def colour_printers(at: datetime, k: int) -> list:  # type: ignore[type-arg]
    """The Xerox and the HP, every supply ``k`` points lower than at first (k at most 50)."""

    def supplies(names: tuple[str, ...]) -> list[Supply]:
        return [
            Supply(
                index=i + 1,
                description=n,
                kind="toner" if i < 4 else "other",
                color=COLORS[i] if i < 4 else None,
                level=95 - 3 * i - k,
                max=100,
                unit="percent",
                percent=float(95 - 3 * i - k),
                state="ok",
            )
            for i, n in enumerate(names)
        ]

    return [
        msgspec.structs.replace(
            reading("XA1", at, ip="10.0.0.41", total=1000 + k, manufacturer="Xerox", model="AltaLink C8045"),
            supplies=supplies(XEROX),
        ),
        msgspec.structs.replace(
            reading(
                "CNB1",
                at,
                ip="10.0.0.42",
                total=2000 + k,
                manufacturer="HP",
                model="HP Color LaserJet M452nw",
            ),
            supplies=supplies(HP),
        ),
    ]


def x_labels(svg: str) -> list[str]:
    axis = svg[svg.index('class="axis x') :]
    axis = axis[: axis.index('class="axis y') if 'class="axis y' in axis else len(axis)]
    return re.findall(r"<text[^>]*>([^<]*)</text>", axis)


@pytest.mark.parametrize(
    "every", [timedelta(seconds=15), timedelta(minutes=2), timedelta(hours=5), timedelta(days=1)]
)
def test_every_time_axis_label_is_a_different_moment(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, every: timedelta
) -> None:
    """Readings seconds apart (a first demo run), minutes, hours apart, daily over 90 days."""
    feed = Feeder(pipeline, client_kit, server_kit)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    n = 90 if every == timedelta(days=1) else 6
    for k in range(n):
        at = end - every * (n - 1 - k)
        feed.send(at, colour_printers(at, k * 50 // n))
    data = reports.build(
        "supplies", start=end - timedelta(days=91), end=end + timedelta(hours=1), with_history=True
    )
    for kind in ("supplies", "meters"):
        if kind == "meters":
            data = reports.build(
                "meters", start=end - timedelta(days=91), end=end + timedelta(hours=1), with_history=True
            )
        charts = re.findall(r"<svg.*?</svg>", reports.render(data, "html"), re.S)
        assert len(charts) == 2, kind
        for svg in charts:
            labels = x_labels(svg)
            assert len(labels) >= 2 and len(set(labels)) == len(labels), (kind, labels)
            assert not any(label.endswith("…") for label in labels), labels


def test_time_axis_picks_round_moments_and_a_format_that_tells_them_apart() -> None:
    from fsm_server.reports.html import time_axis

    t = datetime(2026, 12, 2, 4, 11, 7, tzinfo=UTC)
    ticks, fmt = time_axis(t, t + timedelta(minutes=3))
    assert (fmt, ticks[0], len(ticks)) == ("%H:%M:%S", datetime(2026, 12, 2, 4, 11, 30, tzinfo=UTC), 6)
    ticks, fmt = time_axis(t, t + timedelta(days=90))
    assert fmt == "%Y-%m-%d" and 2 <= len(ticks) <= 7
    assert time_axis(t, t) == ([t], "%H:%M:%S")


MEASURE = """<script>
window.addEventListener("load", () => {
  const out = [];
  for (const svg of document.querySelectorAll("figure svg")) {
    const box = svg.getBoundingClientRect();
    const items = [...svg.querySelectorAll(".legends .legend")].map(g => g.getBoundingClientRect());
    for (let i = 0; i < items.length; i++) {
      const a = items[i];
      if (a.right > box.right + 1 || a.left < box.left - 1) out.push(["outside", i]);
      for (let j = i + 1; j < items.length; j++) {
        const b = items[j];
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
          out.push(["overlap", i, j]);
      }
    }
    out.push(["legends", items.length]);
  }
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body>"""


def test_the_legends_of_colour_printers_do_not_overlap_in_a_browser(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, tmp_path: Path
) -> None:
    browser = Chromium(tmp_path)
    feed = Feeder(pipeline, client_kit, server_kit)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    for k in range(30):
        at = end - timedelta(days=29 - k)
        feed.send(at, colour_printers(at, k))
    data = reports.build(
        "supplies", start=end - timedelta(days=31), end=end + timedelta(hours=1), with_history=True
    )
    page = reports.render(data, "html")
    measured = tmp_path / "measure.html"
    measured.write_text(page.replace("</body>", MEASURE))
    dom, console = browser.open(measured, tmp_path / "supplies-legends.png")
    assert console == []
    found = json.loads(re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S).group(1))  # type: ignore[union-attr]
    assert ["legends", len(XEROX)] in found and ["legends", len(HP)] in found
    assert [f for f in found if f[0] != "legends"] == []
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "supplies-legends.png", ARTIFACTS / "supplies-legends.png")


WIDTH = """<script>
window.addEventListener("load", () => {
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify([document.documentElement.scrollWidth, window.innerWidth]);
  document.body.appendChild(pre);
});
</script></body>"""


def test_hostile_text_keeps_every_page_within_the_window(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, db_backend: str, tmp_path: Path
) -> None:
    """Long locations, serials and models without a space, bidi and control characters: every
    page still fits a 1280 px window (no row as wide as a 100 KB location)."""
    from test_reports_hostile_text import LONG, PERIOD, feed_hostile, shown_texts

    browser = Chromium(tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    feed_hostile(
        pipeline, client_kit, server_kit, (*shown_texts(db_backend), LONG, "M" * 60), customer="\u202eEMCA"
    )
    for kind in reports.KINDS:
        page = tmp_path / f"{kind}.html"
        html = reports.render(reports.build(kind, with_history=True, **PERIOD), "html")  # type: ignore[arg-type]
        page.write_text(html.replace("</body>", WIDTH))
        dom, console = browser.open(page, tmp_path / f"hostile-{kind}.png")
        assert console == [], kind
        scroll, window = json.loads(re.search(r'<pre id="measured">(.*?)</pre>', dom).group(1))  # type: ignore[union-attr]
        assert scroll <= window, (kind, scroll, window)
        shutil.copy(tmp_path / f"hostile-{kind}.png", ARTIFACTS / f"hostile-{kind}.png")

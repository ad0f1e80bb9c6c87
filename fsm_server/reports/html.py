"""Reports as one self-contained HTML page: Jinja2 templates with inline CSS, charts as inline SVG.

Charts are drawn by pygal (pure-Python SVG) with its JavaScript left out, so the page loads
nothing from anywhere: it can be mailed, archived, opened offline and printed to PDF from a
browser (the print CSS keeps tables and charts from splitting across pages).

Text a printer or client reported is hostile: every ``{{ }}`` of the templates goes through
``fsm_protocol.display.display_text`` (the environment's ``finalize``: bidi and control
characters shown as ``<U+XXXX>``, at most ``MAX_SHOWN`` characters), table cells through the
``cell`` filter (shortened, the whole text in a tooltip), and chart titles and legends the same.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pygal import DateTimeLine
from pygal.style import Style

from fsm_protocol.display import CELL_CHARS, display_text, shorten

from .alerts import Alerts
from .health import Health
from .inventory import Inventory
from .meters import MeterRow, Meters
from .scope import MAX_CHARTS, DeviceInfo
from .supplies import Supplies

# pygal puts a legacy import hook (for its optional pygal.maps plugins) on sys.meta_path that has
# no find_spec(), so every later failed import in the process raises an ImportWarning. fsm uses no
# pygal plugin: take the hook out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

TEMPLATES = Path(__file__).with_name("templates")

_COLORS = {"black": "#222222", "cyan": "#00a0c8", "magenta": "#d0208a", "yellow": "#e0b800"}
_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#bbb",
    font_family="Helvetica, Arial, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
    title_font_size=13,
    colors=("#2563eb", "#059669", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#4b5563"),
)


#: Characters of a chart's title and of a legend entry at most (the full text is in the table).
CHART_TITLE_CHARS = 72


def shown(value: object) -> object:
    """What a template shows of a value: text defused (``display_text``); markup and numbers as they are."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return display_text(value)
    return value


#: A run of characters without a space this long may break anywhere (real serials and MACs are shorter).
_UNBROKEN = re.compile(r"\S{25}")


def cell(value: object, limit: int = CELL_CHARS) -> Markup:
    """A table cell of reported text: defused and shortened to ``limit``; when shortened, the whole
    (defused) text is the cell's tooltip. Long text lives on in the CSV and JSON output."""
    full = display_text(value)
    short = shorten(full, limit)
    css = "brk" if _UNBROKEN.search(short) else ""
    if short == full and not css:
        return escape(full)
    if short == full:
        return Markup('<span class="{}">{}</span>').format(css, short)
    return Markup('<span class="{}" title="{}">{}</span>').format(css, full, short)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["j2", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters["cell"] = cell
    env.filters["dt"] = lambda v: "" if v is None else v.strftime("%Y-%m-%d %H:%M")
    env.filters["day"] = lambda v: "" if v is None else v.strftime("%Y-%m-%d")
    env.filters["num"] = lambda v, d=0: "" if v is None else f"{v:,.{d}f}"
    env.filters["dur"] = duration
    return env


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``45s``."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


#: Steps between two labels of a time axis, the shortest that keeps at most ``_TICKS`` labels wins.
_TICK_STEPS = (
    *(
        timedelta(seconds=s)
        for s in (
            1,
            2,
            5,
            10,
            15,
            30,
            60,
            120,
            300,
            600,
            900,
            1800,
            3600,
            7200,
            3 * 3600,
            6 * 3600,
            12 * 3600,
        )
    ),
    *(timedelta(days=d) for d in (1, 2, 4, 7, 14, 28, 56, 91, 182, 364, 728, 3640)),
)
_TICKS = 7


def time_axis(first: datetime, last: datetime, *, most: int = _TICKS) -> tuple[list[datetime], str]:
    """Labels for a time axis from ``first`` to ``last``: at most ``most`` round moments, and the
    strftime format that tells every one of them apart (seconds, minutes or days)."""
    span = max(last - first, timedelta(0))
    step = next((s for s in _TICK_STEPS if span <= s * (most - 1)), _TICK_STEPS[-1])
    epoch = datetime(1970, 1, 1, tzinfo=first.tzinfo)
    k = -((epoch - first) // step)  # ceil((first - epoch) / step)
    ticks = []
    at = epoch + k * step
    while at <= last:
        ticks.append(at)
        at += step
    fmt = "%Y-%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"
    if step < timedelta(minutes=1):
        fmt = "%H:%M:%S"
    return ticks or [first], fmt


def _legend_layout(names: list[str], width: int) -> tuple[int, int]:
    """(columns, characters per entry) for a legend under a chart ``width`` pixels wide, so that
    entries never run into each other: as many columns as the longest entry lets fit."""
    longest = max((len(n) for n in names), default=1)
    char_px, box_px = 6.6, 30  # an 11 px sans-serif character on average, the colour box and gap
    columns = max(1, min(len(names), 4, int(width // (longest * char_px + box_px))))
    chars = int((width / columns - box_px) // char_px)
    return columns, max(chars, 8)


def _chart(
    title: str,
    series: list[tuple[str, list[tuple[datetime, float]], str | None]],
    *,
    y_title: str = "",
    y_range: tuple[float, float] | None = None,
) -> Markup:
    """A time-line chart as an inline <svg> (no script); reported text in it is defused and shortened."""
    times = [t for _, points, _ in series for t, _ in points]
    ticks, fmt = time_axis(min(times), max(times)) if times else ([], "%Y-%m-%d")
    names = [shorten(display_text(name), CHART_TITLE_CHARS) for name, _, _ in series]
    width = 720
    columns, chars = _legend_layout(names, width - 40)
    rows = -(-len(series) // columns)
    colors = tuple(c or _STYLE.colors[i % len(_STYLE.colors)] for i, (_, _, c) in enumerate(series))
    style = Style(**{**_STYLE.__dict__, "colors": colors}) if colors else _STYLE
    chart = DateTimeLine(
        js=[],
        disable_xml_declaration=True,
        width=width,
        height=230 + 18 * rows,
        style=style,
        title=shorten(display_text(title), CHART_TITLE_CHARS),
        x_title=None,
        y_title=y_title or None,
        show_dots=False,
        stroke_style={"width": 2},
        x_label_rotation=20,
        x_labels=ticks,
        truncate_label=-1,
        truncate_legend=chars,
        legend_at_bottom=True,
        legend_at_bottom_columns=columns,
        x_value_formatter=lambda d: d.strftime(fmt),
        range=y_range,
        include_x_axis=y_range is not None,
        show_x_guides=False,
        dynamic_print_values=False,
        print_values=False,
    )
    for name, (_, points, _) in zip(names, series, strict=True):
        chart.add(name, [(t, v) for t, v in points])
    svg: str = chart.render(is_unicode=True)
    return Markup(svg)


def _label(d: DeviceInfo) -> str:
    return shorten(display_text(d.label), CHART_TITLE_CHARS)


class Charts:
    """A page's charts, each drawn when the page gets to it (an SVG is tens of KB, a page holds up
    to ``MAX_CHARTS``): the page being written holds one chart at a time."""

    def __init__(self, drawings: list[tuple[str, Callable[[], Markup]]]) -> None:
        self._drawings = drawings

    def __bool__(self) -> bool:
        return bool(self._drawings)

    def __len__(self) -> int:
        return len(self._drawings)

    def __iter__(self) -> Iterator[tuple[str, Markup]]:
        for label, draw in self._drawings:
            yield label, draw()


def meter_charts(history: dict[int, list[tuple[datetime, int]]], devices: dict[int, DeviceInfo]) -> Charts:
    """The counter history of each device of ``history`` (the first ``MAX_CHARTS``) read twice or more."""
    drawings: list[tuple[str, Callable[[], Markup]]] = []
    for dev_id, points in list(history.items())[:MAX_CHARTS]:
        if len(points) < 2 or dev_id not in devices:
            continue
        d = devices[dev_id]
        drawings.append((_label(d), functools.partial(_counter_chart, d, points)))
    return Charts(drawings)


def _counter_chart(d: DeviceInfo, points: list[tuple[datetime, int]]) -> Markup:
    history = [(t, float(v)) for t, v in points]
    return _chart(f"{d.label}: total pages", [("total", history, None)], y_title="pages")


def counter_charts(report: Meters) -> list[tuple[str, Markup]]:
    return list(meter_charts(report.history, {r.device.id: r.device for r in report.rows}))


def _supply_charts(report: Supplies) -> Charts:
    by_device: dict[int, list[Any]] = {}
    for row in report.rows:
        if len(row.history) >= 2:
            by_device.setdefault(row.device.id, []).append(row)
    drawings: list[tuple[str, Callable[[], Markup]]] = []
    for rows in list(by_device.values())[:MAX_CHARTS]:
        drawings.append((_label(rows[0].device), functools.partial(_supply_chart, rows)))
    return Charts(drawings)


def _supply_chart(rows: list[Any]) -> Markup:
    d = rows[0].device
    series = [(r.description or r.supply_kind, r.history, _COLORS.get(r.color or "")) for r in rows]
    return _chart(f"{d.label}: supply levels", series, y_title="%", y_range=(0, 100))


def supply_charts(report: Supplies) -> list[tuple[str, Markup]]:
    return list(_supply_charts(report))


#: a colour a report page may carry (anything else is dropped)
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LOGO = re.compile(r"^data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+$")


@dataclass(frozen=True)
class ReportBrand:
    """A dealer's look on its customers' report pages: name, ``#rrggbb`` colours and the logo as a
    ``data:`` URI (the page loads nothing). Values of another shape are dropped, not shown."""

    name: str
    colour: str | None = None
    accent: str | None = None
    logo: str | None = None

    def __post_init__(self) -> None:
        for attr, pattern in (("colour", _COLOUR), ("accent", _COLOUR), ("logo", _LOGO)):
            value = getattr(self, attr)
            if value is not None and not pattern.match(value):
                object.__setattr__(self, attr, None)


def _title(kind: str, customer: str | None, title: str | None) -> str:
    return title or f"fsm {kind} report" + (f" - {customer}" if customer else "")


def write_html(
    report: Inventory | Meters | Supplies | Alerts | Health,
    out: TextIO,
    *,
    title: str | None = None,
    brand: ReportBrand | None = None,
) -> None:
    """Write the page of a report to ``out`` as the template produces it (build meters/supplies
    ``with_history=True`` to get charts); ``brand``: the dealer's logo and colours."""
    if isinstance(report, Meters):
        write_meters_html(report, report.rows, out, title=title, brand=brand)
        return
    kind = type(report).__name__.lower()
    charts = _supply_charts(report) if isinstance(report, Supplies) else Charts([])
    template = _env().get_template(f"{kind}.html.j2")
    out.writelines(
        template.generate(
            r=report, kind=kind, charts=charts, title=_title(kind, report.customer, title), brand=brand
        )
    )


@dataclass
class MetersSummary:
    """The cards above the meters table, summed as its rows go by."""

    devices: int = 0
    total: int = 0  # pages of the "total" counters
    flagged: int = 0  # rows with a flag


#: Where the meters table goes in its page (text no template or reported value holds).
_TABLE = "\x00fsm-meters-table\x00"
#: A meters table this large is kept in memory; a larger one goes to a temporary file.
TABLE_IN_MEMORY = 1 << 20


def write_meters_html(
    head: Meters,
    rows: Iterable[MeterRow],
    out: TextIO,
    *,
    title: str | None = None,
    brand: ReportBrand | None = None,
) -> None:
    """The meters page of ``rows`` (in report order, as ``meter_rows`` yields them) written device by
    device: the cards above the table sum every row, so the table is written first to a temporary
    file (in memory up to ``TABLE_IN_MEMORY``) and copied into the page after them. Charts are those
    of ``head.history``, which ``meter_rows`` fills as the rows go by."""
    env = _env()
    device_rows = env.get_template("meters_device.html.j2")
    summary = MetersSummary()
    devices: dict[int, DeviceInfo] = {}
    with tempfile.SpooledTemporaryFile(max_size=TABLE_IN_MEMORY, mode="w+", encoding="utf-8") as table:
        for dev_id, group in itertools.groupby(rows, key=lambda r: r.device.id):
            part = list(group)
            summary.devices += 1
            summary.total += sum(r.usage for r in part if r.counter == "total")
            summary.flagged += sum(1 for r in part if r.flags)
            if dev_id in head.history:
                devices[dev_id] = part[0].device
            table.write(device_rows.render(d=part[0].device, rows=part))
        page = env.get_template("meters.html.j2").generate(
            r=head,
            summary=summary,
            table=Markup(_TABLE),
            kind="meters",
            charts=meter_charts(head.history, devices),
            title=_title("meters", head.customer, title),
            brand=brand,
        )
        for piece in page:
            if _TABLE not in piece:
                out.write(piece)
                continue
            before, after = piece.split(_TABLE, 1)
            out.write(before)
            table.seek(0)
            shutil.copyfileobj(table, out)
            out.write(after)


def render_html(report: Inventory | Meters | Supplies | Alerts | Health, *, title: str | None = None) -> str:
    """The whole HTML page of a report (build meters/supplies ``with_history=True`` to get charts)."""
    page = io.StringIO()
    write_html(report, page, title=title)
    return page.getvalue()


__all__ = [
    "CHART_TITLE_CHARS",
    "MAX_CHARTS",
    "TABLE_IN_MEMORY",
    "TEMPLATES",
    "Charts",
    "MetersSummary",
    "ReportBrand",
    "cell",
    "counter_charts",
    "duration",
    "meter_charts",
    "render_html",
    "shown",
    "supply_charts",
    "time_axis",
    "write_html",
    "write_meters_html",
]

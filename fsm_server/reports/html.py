"""Reports as one self-contained HTML page: Jinja2 templates with inline CSS, charts as inline SVG.

Charts are drawn by pygal (pure-Python SVG) with its JavaScript left out, so the page loads
nothing from anywhere: it can be mailed, archived, opened offline and printed to PDF from a
browser (the print CSS keeps tables and charts from splitting across pages).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pygal import DateTimeLine
from pygal.style import Style

from .meters import Meters
from .queries import Alerts, Health, Inventory, Supplies

# pygal puts a legacy import hook (for its optional pygal.maps plugins) on sys.meta_path that has
# no find_spec(), so every later failed import in the process raises an ImportWarning. fsm uses no
# pygal plugin: take the hook out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

TEMPLATES = Path(__file__).with_name("templates")
#: Charts per report at most: a fleet of thousands gets its tables, not thousands of charts.
MAX_CHARTS = 60

_COLORS = {"black": "#222222", "cyan": "#00a0c8", "magenta": "#d0208a", "yellow": "#e0b800"}
_STYLE = Style(background="white", plot_background="white", foreground="#333", foreground_strong="#111",
               foreground_subtle="#bbb", font_family="Helvetica, Arial, sans-serif", label_font_size=11,
               major_label_font_size=11, legend_font_size=11, title_font_size=13,
               colors=("#2563eb", "#059669", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#4b5563"))


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
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


def _chart(title: str, series: list[tuple[str, list[tuple[datetime, float]], str | None]], *,
           y_title: str = "", y_range: tuple[float, float] | None = None) -> Markup:
    """A time-line chart as an inline <svg> (no script)."""
    span = max((p[-1][0] - p[0][0] for _, p, _ in series if p), default=timedelta(0))
    fmt = "%m-%d %H:%M" if span < timedelta(days=3) else "%Y-%m-%d"
    colors = tuple(c or _STYLE.colors[i % len(_STYLE.colors)] for i, (_, _, c) in enumerate(series))
    style = Style(**{**_STYLE.__dict__, "colors": colors}) if colors else _STYLE
    chart = DateTimeLine(
        js=[], disable_xml_declaration=True, width=720, height=260, style=style, title=title,
        x_title=None, y_title=y_title or None, show_dots=False, stroke_style={"width": 2},
        x_label_rotation=20, truncate_legend=28, legend_at_bottom=True, legend_at_bottom_columns=4,
        x_value_formatter=lambda d: d.strftime(fmt), range=y_range, include_x_axis=y_range is not None,
        show_x_guides=False, dynamic_print_values=False, print_values=False,
    )
    for name, points, _ in series:
        chart.add(name, [(t, v) for t, v in points])
    svg: str = chart.render(is_unicode=True)
    return Markup(svg)


def counter_charts(report: Meters) -> list[tuple[str, Markup]]:
    by_id = {r.device.id: r.device for r in report.rows}
    out = []
    for dev_id, points in list(report.history.items())[:MAX_CHARTS]:
        if len(points) < 2 or dev_id not in by_id:
            continue
        d = by_id[dev_id]
        out.append((d.label, _chart(f"{d.label}: total pages", [("total", [(t, float(v)) for t, v in points],
                                                                  None)], y_title="pages")))
    return out


def supply_charts(report: Supplies) -> list[tuple[str, Markup]]:
    by_device: dict[int, list[Any]] = {}
    for row in report.rows:
        if len(row.history) >= 2:
            by_device.setdefault(row.device.id, []).append(row)
    out = []
    for rows in list(by_device.values())[:MAX_CHARTS]:
        d = rows[0].device
        series = [(r.description or r.supply_kind, r.history, _COLORS.get(r.color or "")) for r in rows]
        out.append((d.label, _chart(f"{d.label}: supply levels", series, y_title="%", y_range=(0, 100))))
    return out


def render_html(report: Inventory | Meters | Supplies | Alerts | Health, *, title: str | None = None) -> str:
    """The whole HTML page of a report (build meters/supplies ``with_history=True`` to get charts)."""
    kind = type(report).__name__.lower()
    charts: list[tuple[str, Markup]] = []
    if isinstance(report, Meters):
        charts = counter_charts(report)
    elif isinstance(report, Supplies):
        charts = supply_charts(report)
    template = _env().get_template(f"{kind}.html.j2")
    title = title or f"fsm {kind} report" + (f" - {report.customer}" if report.customer else "")
    return template.render(r=report, kind=kind, charts=charts, title=title)


__all__ = ["MAX_CHARTS", "TEMPLATES", "counter_charts", "duration", "render_html", "supply_charts"]

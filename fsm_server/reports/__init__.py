"""Reports a dealer can send as they are: inventory, meters, supplies, alerts, health.

Core API (the CLI, the demo and a later portal call the same functions)::

    from fsm_server import reports
    data = reports.build("meters", customer="ACME", start=..., end=..., settings=config.reports)
    html = reports.render(data, "html")       # or "csv", "json"

``build`` returns msgspec Structs (``reports.Meters`` ...); each kind also has its own function
(``reports.meters(scope)``, ``reports.supplies(scope)`` ...). How every figure is computed:
docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Literal, TextIO

import msgspec

from fsm_protocol.vocabulary import COUNTERS, is_counter_name

from ..config import ReportsSection
from ..errors import ReportError
from .alerts import AlertEpisode, Alerts, alerts
from .csv import METERS_HEADER, SUPPLIES_HEADER, meter_cells, render_csv, supply_cells, write_table
from .forecast import Forecast, Replacement, forecast, replacements
from .health import Health, health
from .html import ReportBrand, render_html, write_html, write_meters_html
from .inventory import Inventory, inventory
from .meters import MeterRow, Meters, meter_rows, meters, previous_month
from .scope import Scope, bound_database
from .supplies import Supplies, lowest_supplies, sorted_supplies, supplies, supply_rank

Kind = Literal["inventory", "meters", "supplies", "alerts", "health"]
KINDS: tuple[str, ...] = ("inventory", "meters", "supplies", "alerts", "health")
FORMATS: tuple[str, ...] = ("html", "csv", "json")
AnyReport = Inventory | Meters | Supplies | Alerts | Health


def parse_when(text: str, *, end: bool = False) -> datetime:
    """``2026-10-01`` (midnight UTC; as an ``end``, the midnight after that day) or an ISO datetime."""
    try:
        if len(text) == 10:
            day = datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(
            f"date {text!r} is not YYYY-MM-DD or an ISO 8601 date-time",
            hint="e.g. --from 2026-10-01 --to 2026-10-31",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def scope_for(
    kind: str,
    *,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    dealer: str | None = None,
) -> Scope:
    """The period a report covers: what was given, else the last complete month for meters and
    the last ``[reports] recent_days`` for the others."""
    cfg = settings or ReportsSection()
    now = now or datetime.now(UTC)
    if kind == "meters" and start is None and end is None:
        start, end = previous_month(now)
    end = end or now
    start = start or end - timedelta(days=cfg.recent_days)
    if start >= end:
        raise ReportError(
            f"the period starts at {start.isoformat()}, not before its end {end.isoformat()}",
            hint="give --from before --to",
        )
    return Scope(start=start, end=end, now=now, customer=customer, dealer=None if customer else dealer)


def check_settings(settings: ReportsSection) -> None:
    """Refuse [reports] settings that would give wrong figures without a word (a typo in a name)."""
    for name in settings.meter_names:
        if not is_counter_name(name):
            raise ReportError(
                f"[reports.meter_names] {name!r} is not a canonical counter name",
                hint=f"use one of {', '.join(sorted(COUNTERS))} (or x_<vendor extra>)",
            )
    if settings.forecast_min_points < 2 or settings.forecast_window_days <= 0:
        raise ReportError(
            f"[reports] forecast_min_points = {settings.forecast_min_points} and "
            f"forecast_window_days = {settings.forecast_window_days} leave nothing to fit",
            hint="forecast_min_points must be at least 2 and forecast_window_days positive",
        )


def build(
    kind: str,
    *,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    with_history: bool = False,
    dealer: str | None = None,
) -> AnyReport:
    """Build one report's data; ``with_history`` adds the series the HTML charts draw; ``dealer``
    without ``customer``: every customer of that dealer."""
    if kind not in KINDS:
        raise ReportError(
            f"report kind {kind!r} is not one of {', '.join(KINDS)}",
            hint="use inventory, meters, supplies, alerts or health",
        )
    cfg = settings or ReportsSection()
    check_settings(cfg)
    scope = scope_for(kind, customer=customer, start=start, end=end, now=now, settings=cfg, dealer=dealer)
    if kind == "inventory":
        return inventory(scope)
    if kind == "meters":
        return meters(scope, cfg, with_history=with_history)
    if kind == "supplies":
        return supplies(scope, cfg, with_history=with_history)
    if kind == "alerts":
        return alerts(scope)
    return health(scope, cfg)


def stream(
    kind: str,
    fmt: str,
    out: TextIO,
    *,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    brand: ReportBrand | None = None,
    dealer: str | None = None,
) -> None:
    """Build one report and write it to ``out`` as ``render`` would, as it is computed: the meters
    CSV, JSON and HTML hold one chunk of devices at a time, whatever the fleet's size (the HTML
    table goes through a temporary file, see ``write_meters_html``); the other reports hold one
    row per item (supplies, episodes ...), never the period's readings, and their pages are written
    as the template produces them, never held whole."""
    check_format(fmt)
    if kind == "supplies" and fmt != "html":
        _stream_supplies(
            fmt, out, customer=customer, start=start, end=end, now=now, settings=settings, dealer=dealer
        )
        return
    if kind != "meters":
        data = build(
            kind,
            customer=customer,
            start=start,
            end=end,
            now=now,
            settings=settings,
            with_history=fmt == "html",
            dealer=dealer,
        )
        if fmt == "html":
            write_html(data, out, brand=brand, title=dealer_title(kind, customer, dealer))
        else:
            out.write(render(data, fmt))
        return
    cfg = settings or ReportsSection()
    check_settings(cfg)
    scope = scope_for(kind, customer=customer, start=start, end=end, now=now, settings=cfg, dealer=dealer)
    head = Meters(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end, rows=[])
    rows = meter_rows(bound_database(), scope, cfg, history=head.history if fmt == "html" else None)
    if fmt == "html":
        write_meters_html(head, rows, out, brand=brand, title=dealer_title(kind, customer, dealer))
        return
    if fmt == "csv":
        write_table(out, METERS_HEADER, (meter_cells(r) for r in rows))
        return
    _write_json(out, head, (_json_row(r) for r in rows))


def _stream_supplies(
    fmt: str,
    out: TextIO,
    *,
    customer: str | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime | None,
    settings: ReportsSection | None,
    dealer: str | None = None,
) -> None:
    """The supplies CSV or JSON, its rows sorted across the fleet without holding them all
    (``sorted_supplies``)."""
    cfg = settings or ReportsSection()
    check_settings(cfg)
    scope = scope_for(
        "supplies", customer=customer, start=start, end=end, now=now, settings=cfg, dealer=dealer
    )
    if fmt == "csv":
        _, cells = sorted_supplies(scope, cfg, supply_cells)
        write_table(out, SUPPLIES_HEADER, cells)
        return
    head, texts = sorted_supplies(scope, cfg, _json_row)
    _write_json(out, head, texts)


def _json_row(row: msgspec.Struct) -> str:
    """One row as the report's JSON shows it (indented as one of its ``rows``)."""
    return msgspec.json.format(msgspec.json.encode(row), indent=2).decode().replace("\n", "\n    ")


def _write_json(out: TextIO, head: msgspec.Struct, rows: Iterable[str]) -> None:
    """``head`` (its ``rows`` empty) as ``render`` writes it, ``rows`` (``_json_row``) written in."""
    text = msgspec.json.format(msgspec.json.encode(head), indent=2).decode()
    before, after = text.split('"rows": []', 1)
    out.write(before + '"rows": [')
    written = 0
    for row in rows:
        out.write(("," if written else "") + "\n    " + row)
        written += 1
    out.write(("\n  ]" if written else "]") + after + "\n")


def dealer_title(kind: str, customer: str | None, dealer: str | None) -> str | None:
    """The page title of a dealer's report over all its customers (None: the usual title)."""
    return f"fsm {kind} report - all customers of {dealer}" if dealer and not customer else None


def check_format(fmt: str) -> None:
    """Refuse a format no renderer has."""
    if fmt not in FORMATS:
        raise ReportError(
            f"report format {fmt!r} is not one of {', '.join(FORMATS)}", hint="use html, csv or json"
        )


def render(report: AnyReport, fmt: str) -> str:
    """The report as ``html`` (self-contained page), ``csv`` or ``json`` text."""
    if fmt == "html":
        return render_html(report)
    if fmt == "csv":
        return render_csv(report)
    check_format(fmt)
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"


__all__ = [
    "FORMATS",
    "KINDS",
    "AlertEpisode",
    "Alerts",
    "AnyReport",
    "Forecast",
    "Health",
    "Inventory",
    "Kind",
    "MeterRow",
    "Meters",
    "Replacement",
    "ReportBrand",
    "ReportError",
    "Scope",
    "Supplies",
    "alerts",
    "build",
    "check_format",
    "check_settings",
    "dealer_title",
    "forecast",
    "health",
    "inventory",
    "lowest_supplies",
    "meters",
    "parse_when",
    "previous_month",
    "render",
    "replacements",
    "scope_for",
    "stream",
    "supplies",
    "supply_rank",
]

"""Reports as CSV for ERPs and spreadsheets: one header line, one row per item, UTC ISO times.

The meters CSV is the one ERPs import: one row per device and meter, with the ERP's meter name
from ``[reports] meter_names``. Numbers are plain integers; times ``YYYY-MM-DDTHH:MM:SSZ``.

Every cell goes through ``spreadsheet_cell``: text a spreadsheet would run as a formula (a
printer's model set to ``=HYPERLINK(...)`` by anyone on the customer's network) gets a leading
``'``, as OWASP recommends; numbers stay numbers.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from .alerts import Alerts
from .health import Health
from .inventory import Inventory
from .meters import MeterRow, Meters
from .scope import DeviceInfo
from .supplies import Supplies, SupplyRow

DEVICE_COLUMNS = ("customer", "site", "client", "manufacturer", "model", "serial", "ip")


#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RISKY_FIRST = frozenset(FORMULA_START)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet runs: text starting with ``= + - @``, a tab or a
    carriage return is prefixed with ``'``; numbers (also ``-3`` or ``-1.5`` as text) are kept."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


@functools.lru_cache(maxsize=4096)  # a reading's time comes once per counter or supply of it
def _t(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _n(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _device(d: DeviceInfo) -> list[Any]:
    return [d.customer, d.site, d.client, d.manufacturer or "", d.model or "", d.serial or "", d.ip]


def safe_row(row: Sequence[Any]) -> list[Any]:
    """``row``'s cells through ``spreadsheet_cell``."""
    # the test of the first character inline: a call per cell was a good part of a report's time
    return [spreadsheet_cell(c) if isinstance(c, str) and c[:1] in _RISKY_FIRST else c for c in row]


def write_table(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A header line and ``rows`` to ``out`` as they come (RFC 4180, cells ``spreadsheet_cell``)."""
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(map(safe_row, rows))


def _write(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    write_table(out, header, rows)
    return out.getvalue()


def inventory_csv(r: Inventory) -> str:
    return _write(
        (
            *DEVICE_COLUMNS,
            "location",
            "hostname",
            "mac",
            "firmware",
            "pmd",
            "first_seen",
            "last_seen",
            "total",
        ),
        (
            [
                *_device(x.device),
                x.device.location or "",
                x.hostname or "",
                x.mac or "",
                x.firmware or "",
                x.pmd or "",
                _t(x.first_seen),
                _t(x.last_seen),
                "" if x.total is None else x.total,
            ]
            for x in r.rows
        ),
    )


METERS_HEADER = (*DEVICE_COLUMNS, "meter", "counter", "start_at", "start", "end_at", "end", "usage", "flags")


def meter_cells(x: MeterRow) -> list[Any]:
    """One meters CSV line (``METERS_HEADER``)."""
    return [
        *_device(x.device),
        x.meter,
        x.counter,
        _t(x.start_at),
        x.start_value,
        _t(x.end_at),
        x.end_value,
        x.usage,
        " ".join(x.flags),
    ]


def meter_text(
    start: str, start_at: datetime, start_value: int, end_at: datetime, end: int, usage: int, flags: str
) -> str:
    """``meter_line`` as the text ``write_table`` writes for it, from the text of its first
    cells (``cells_text`` of the device's cells and the names, built once for many lines);
    ``flags`` are flag names and spaces, nothing a spreadsheet runs or CSV quotes."""
    return f"{start}{_t(start_at)},{start_value},{_t(end_at)},{end},{usage},{flags}\r\n"


def cells_text(cells: Sequence[Any]) -> str:
    """``cells`` as ``write_table`` writes them at the start of a line, with the separator after the
    last: the text of the cells many lines share."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([*safe_row(cells), ""])
    return out.getvalue()


def header_text(header: Sequence[str]) -> str:
    """The header line ``write_table`` writes."""
    return cells_text(header)[:-1] + "\r\n"


def device_cells(d: DeviceInfo) -> list[Any]:
    """The ``DEVICE_COLUMNS`` cells of a device."""
    return _device(d)


def meters_csv(r: Meters) -> str:
    return _write(METERS_HEADER, (meter_cells(x) for x in r.rows))


SUPPLIES_HEADER = (
    *DEVICE_COLUMNS,
    "supply",
    "supply_kind",
    "color",
    "percent",
    "state",
    "observed_at",
    "low",
    "days_remaining",
    "empty_at",
    "percent_per_day",
    "no_forecast_because",
    "replacements",
)


def supply_cells(x: SupplyRow) -> list[Any]:
    """One supplies CSV line (``SUPPLIES_HEADER``)."""
    f = x.forecast
    reps = " ".join(
        f"{_t(p.at)}:{p.before:g}->{p.after:g}{'(early)' if p.early else ''}" for p in f.replacements
    )
    return [
        *_device(x.device),
        x.description,
        x.supply_kind,
        x.color or "",
        _n(x.percent),
        x.state,
        _t(x.observed_at),
        "yes" if x.low else "",
        _n(f.days_remaining),
        _t(f.empty_at),
        _n(f.rate_per_day, 2),
        f.reason or "",
        reps,
    ]


def supplies_csv(r: Supplies) -> str:
    return _write(SUPPLIES_HEADER, (supply_cells(x) for x in r.rows))


def alerts_csv(r: Alerts) -> str:
    return _write(
        (
            *DEVICE_COLUMNS,
            "status",
            "code",
            "severity",
            "source",
            "description",
            "start",
            "end",
            "duration_seconds",
        ),
        (
            [
                *_device(e.device),
                "open" if e.end is None else "closed",
                e.code,
                e.severity,
                e.source,
                e.description,
                _t(e.start),
                _t(e.end),
                int(e.duration_seconds),
            ]
            for e in [*r.open, *r.recent]
        ),
    )


def health_csv(r: Health) -> str:
    """Every finding as one row: (section, subject, detail...)."""
    rows: list[list[Any]] = []
    for c in r.clients:
        rows.append(
            [
                "client",
                c.client,
                "silent" if c.silent else "ok",
                _t(c.last_report_at),
                f"expected every {c.expected_hours:g} h",
                c.reports_in_period,
            ]
        )
    for s in r.silent_devices:
        rows.append(
            [
                "silent_device",
                s.device.serial or s.device.ip,
                f"silent {s.silent_hours:.1f} h",
                _t(s.last_seen),
                s.device.client,
                "",
            ]
        )
    for g in r.gaps:
        rows.append(["sequence_gap", g.client, f"{g.first}-{g.last}", "", g.kind, g.count])
    for reason, n in sorted(r.quarantine.items()):
        rows.append(["quarantine", reason, "held", "", "", n])
    for a in r.anomalies:
        rows.append(
            [
                "counter_anomaly",
                a.device.serial or a.device.ip,
                f"{a.counter} {a.flag}",
                _t(a.observed_at),
                f"{a.previous} -> {a.value}",
                "",
            ]
        )
    for col in r.collisions:
        for d in col.devices:
            rows.append(
                [
                    "identity_collision",
                    col.identity,
                    f"under {col.customers} customers",
                    "",
                    f"{d.customer} / {d.site} / {d.client}",
                    col.customers,
                ]
            )
    for cl in r.claims:
        rows.append(
            [
                "customer_claim",
                cl.client,
                f"named {cl.claimed!r}",
                _t(cl.last_at),
                f"loaded under {cl.customer!r}, reports {cl.first_seq}-{cl.last_seq}",
                cl.reports,
            ]
        )
    if r.backup is not None:
        b = r.backup
        state = "failed" if b.failed else "missed" if b.missed else "ok" if b.last_ok_at else "none"
        rows.append(
            [
                "backup",
                b.last_ok_path or "",
                state,
                _t(b.last_ok_at),
                b.last_error if b.failed else f"due by {_t(b.due_by)}",
                "",
            ]
        )
    lat = r.latency
    rows.append(
        [
            "ingest_latency",
            "observed_at->ingested_at",
            f"p50 {_n(lat.p50)} s p90 {_n(lat.p90)} s p99 {_n(lat.p99)} s max {_n(lat.max)} s",
            "",
            "",
            lat.count,
        ]
    )
    return _write(("section", "subject", "state", "at", "detail", "count"), rows)


def render_csv(report: Inventory | Meters | Supplies | Alerts | Health) -> str:
    """The CSV text of any report."""
    if isinstance(report, Inventory):
        return inventory_csv(report)
    if isinstance(report, Meters):
        return meters_csv(report)
    if isinstance(report, Supplies):
        return supplies_csv(report)
    if isinstance(report, Alerts):
        return alerts_csv(report)
    return health_csv(report)


__all__ = [
    "FORMULA_START",
    "METERS_HEADER",
    "SUPPLIES_HEADER",
    "alerts_csv",
    "cells_text",
    "device_cells",
    "header_text",
    "health_csv",
    "inventory_csv",
    "meter_cells",
    "meter_text",
    "meters_csv",
    "render_csv",
    "safe_row",
    "spreadsheet_cell",
    "supplies_csv",
    "supply_cells",
    "write_table",
]

"""The supplies report: current levels, days-remaining forecasts and replacements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import Reading, SupplyValue
from .forecast import Forecast, Replacement, forecast
from .scope import DeviceInfo, Scope, chunks, device_sort_key, devices_in_scope


class SupplyRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    description: str
    supply_kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    low: bool
    forecast: Forecast
    #: (observed_at, percent) over the forecast window and the period, for the chart
    history: list[tuple[datetime, float]] = msgspec.field(default_factory=list)


class Supplies(msgspec.Struct, kw_only=True, tag="supplies", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    rows: list[SupplyRow]
    replacements_in_period: int = 0
    early_replacements_in_period: int = 0



def _supply_key(s: SupplyValue) -> tuple[str, str, str]:
    where = str(s.index) if s.index is not None else s.description
    return (s.kind, s.color or "", where)


def supplies(scope: Scope, settings: ReportsSection | None = None, *, with_history: bool = False) -> Supplies:
    """Current levels, days-remaining forecasts and replacements of every supply in scope."""
    cfg = settings or ReportsSection()
    since = min(scope.start, scope.end - timedelta(days=cfg.forecast_window_days + 1))
    with translated("cannot build the supplies report"):
        infos = devices_in_scope(scope.customer)
        series: dict[tuple[int, tuple[str, str, str]], list[tuple[datetime, SupplyValue]]] = defaultdict(list)
        for part in chunks(infos):
            q = (SupplyValue.select(SupplyValue, Reading.device, Reading.observed_at)
                 .join(Reading)
                 .where(Reading.device.in_(part), Reading.observed_at >= since,
                        Reading.observed_at < scope.end)
                 .order_by(Reading.observed_at, SupplyValue.id))
            for s in q:
                series[(s.reading.device_id, _supply_key(s))].append((s.reading.observed_at, s))
    rows = []
    replaced = early = 0
    for (device_id, _key), points in series.items():
        at, newest = points[-1]
        history = [(t, s.percent) for t, s in points if s.percent is not None]
        f = forecast(history, now=scope.end, window_days=cfg.forecast_window_days,
                     min_span_days=cfg.forecast_min_span_days, min_points=cfg.forecast_min_points,
                     replacement_jump=cfg.replacement_jump_percent,
                     early_percent=cfg.early_replacement_percent)
        if newest.percent is None:
            f.days_remaining = f.empty_at = f.rate_per_day = None
            f.reason = f"the device reports no percent level (state {newest.state})"
        in_period = [r for r in f.replacements if scope.start <= r.at < scope.end]
        replaced += len(in_period)
        early += sum(r.early for r in in_period)
        low = newest.state in ("low", "empty") or (
            newest.percent is not None and newest.percent <= cfg.low_supply_percent)
        rows.append(SupplyRow(
            device=infos[device_id], description=newest.description, supply_kind=newest.kind,
            color=newest.color, percent=newest.percent, state=newest.state, observed_at=at, low=low,
            forecast=f, history=history if with_history else []))
    rows.sort(key=lambda r: (r.forecast.days_remaining is None, r.forecast.days_remaining or 0.0,
                             r.percent if r.percent is not None else 101.0, device_sort_key(r.device)))
    return Supplies(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                    rows=rows, replacements_in_period=replaced, early_replacements_in_period=early)


def supply_rank(row: SupplyRow) -> tuple[int, float]:
    """How urgent a supply is, most urgent first: empty, then low (by the device's state, whatever
    its percent), then by percent, then supplies whose level is unknown."""
    pct = row.percent if row.percent is not None else 0.0
    if row.state == "empty":
        return (0, pct)
    if row.state == "low":
        return (1, pct)
    return (2, pct) if row.percent is not None else (3, 0.0)


def lowest_supplies(rows: Iterable[SupplyRow]) -> dict[int, SupplyRow]:
    """Each device's most urgent supply (``supply_rank``), by device id: a Brother whose black toner
    is empty (it reports no percent) shows the toner, not its drum at 69 %."""
    out: dict[int, SupplyRow] = {}
    for row in rows:
        best = out.get(row.device.id)
        if best is None or supply_rank(row) < supply_rank(best):
            out[row.device.id] = row
    return out


def supply_replacements(rows: list[SupplyRow], scope: Scope) -> list[tuple[SupplyRow, Replacement]]:
    """The replacements within the period, newest first, with the supply they belong to."""
    out = [(r, rep) for r in rows for rep in r.forecast.replacements if scope.start <= rep.at < scope.end]
    return sorted(out, key=lambda x: x[1].at, reverse=True)



__all__ = ["Supplies", "SupplyRow", "lowest_supplies", "supplies", "supply_rank", "supply_replacements"]

"""The reports as they were computed before they were streamed (every reading of the period read
into peewee objects and folded in Python), kept as the oracle the streamed reports must equal."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from peewee import fn

from fsm_server.config import ReportsSection
from fsm_server.db.loader import CounterPolicy
from fsm_server.db.models import AlertValue, CounterValue, Device, Reading, SupplyValue
from fsm_server.reports import Alerts, MeterRow, Meters, Scope, Supplies, forecast
from fsm_server.reports.alerts import ALERT_LOOKBACK, AlertEpisode
from fsm_server.reports.meters import step
from fsm_server.reports.scope import device_sort_key, devices_in_scope
from fsm_server.reports.supplies import SupplyRow


def meters(scope: Scope, cfg: ReportsSection) -> Meters:
    policy = CounterPolicy()
    removed_after = timedelta(hours=cfg.expected_report_hours + cfg.silence_grace_hours)
    infos = devices_in_scope(scope.customer)
    series: dict[tuple[int, str], list[CounterValue]] = defaultdict(list)
    devices = {d.id: d for d in Device.select()}
    before = (
        CounterValue.select(
            CounterValue.device, CounterValue.name, fn.MAX(CounterValue.observed_at).alias("at")
        )
        .where(CounterValue.observed_at <= scope.start)
        .group_by(CounterValue.device, CounterValue.name)
    )
    anchors = {(r.device_id, r.name): r.at for r in before}
    for c in CounterValue.select().order_by(CounterValue.observed_at, CounterValue.id):
        if anchors.get((c.device_id, c.name)) == c.observed_at or scope.start < c.observed_at < scope.end:
            series[(c.device_id, c.name)].append(c)
    rows = []
    for (dev, name), all_reads in series.items():
        reads = [
            r for i, r in enumerate(all_reads) if i == 0 or all_reads[i - 1].observed_at != r.observed_at
        ]
        if dev not in infos or reads[-1].observed_at <= scope.start:
            continue
        flags = []
        if reads[0].observed_at > scope.start and devices[dev].first_seen > scope.start:
            flags.append("added")
        if min(scope.end, scope.now) - reads[-1].observed_at > removed_after:
            flags.append("removed")
        usage = 0
        for prev, cur in itertools.pairwise(reads):
            flag = cur.flag
            if flag is None and cur.value < prev.value:
                flag = policy.flag(
                    prev.value,
                    cur.value,
                    cur.observed_at - prev.observed_at,
                    strong_identity=devices[dev].identity.startswith("sn:"),
                )
            usage += step(prev.value, cur.value, flag)
            if flag and flag not in flags:
                flags.append(flag)
        rows.append(
            MeterRow(
                device=infos[dev],
                counter=name,
                meter=cfg.meter_names.get(name, name),
                start_at=reads[0].observed_at,
                start_value=reads[0].value,
                end_at=reads[-1].observed_at,
                end_value=reads[-1].value,
                usage=usage,
                reads=len(reads),
                flags=flags,
                start_id=reads[0].id,
                end_id=reads[-1].id,
            )
        )
    rows.sort(key=lambda r: (device_sort_key(r.device), r.device.id, r.counter))
    return Meters(
        generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end, rows=rows
    )


def supplies(scope: Scope, cfg: ReportsSection) -> Supplies:
    since = min(scope.start, scope.end - timedelta(days=cfg.forecast_window_days + 1))
    infos = devices_in_scope(scope.customer)
    series: dict[tuple[int, tuple[str, str, str]], list[tuple[datetime, SupplyValue]]] = defaultdict(list)
    q = (
        SupplyValue.select(SupplyValue, Reading.device, Reading.observed_at)
        .join(Reading)
        .where(Reading.observed_at >= since, Reading.observed_at < scope.end)
        .order_by(Reading.observed_at, SupplyValue.id)
    )
    for s in q:
        key = (s.kind, s.color or "", str(s.index) if s.index is not None else s.description)
        series[(s.reading.device_id, key)].append((s.reading.observed_at, s))
    rows = []
    replaced = early = 0
    for (dev, _), points in series.items():
        at, newest = points[-1]
        history = [(t, s.percent) for t, s in points if s.percent is not None]
        f = forecast(
            history,
            now=scope.end,
            window_days=cfg.forecast_window_days,
            min_span_days=cfg.forecast_min_span_days,
            min_points=cfg.forecast_min_points,
            replacement_jump=cfg.replacement_jump_percent,
            early_percent=cfg.early_replacement_percent,
        )
        if newest.percent is None:
            f.days_remaining = f.empty_at = f.rate_per_day = None
            f.reason = f"the device reports no percent level (state {newest.state})"
        in_period = [r for r in f.replacements if scope.start <= r.at < scope.end]
        replaced += len(in_period)
        early += sum(r.early for r in in_period)
        low = newest.state in ("low", "empty") or (
            newest.percent is not None and newest.percent <= cfg.low_supply_percent
        )
        rows.append(
            SupplyRow(
                device=infos[dev],
                description=newest.description,
                supply_kind=newest.kind,
                color=newest.color,
                percent=newest.percent,
                state=newest.state,
                observed_at=at,
                low=low,
                forecast=f,
            )
        )
    rows.sort(
        key=lambda r: (
            r.forecast.days_remaining is None,
            r.forecast.days_remaining or 0.0,
            r.percent if r.percent is not None else 101.0,
            device_sort_key(r.device),
        )
    )
    return Supplies(
        generated_at=scope.now,
        customer=scope.customer,
        start=scope.start,
        end=scope.end,
        rows=rows,
        replacements_in_period=replaced,
        early_replacements_in_period=early,
    )


def alerts(scope: Scope) -> Alerts:
    infos = devices_in_scope(scope.customer)
    codes: dict[int, dict[str, tuple[str, str, str]]] = defaultdict(dict)
    readings: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for r in (
        Reading.select()
        .where(Reading.observed_at >= scope.start - ALERT_LOOKBACK, Reading.observed_at < scope.end)
        .order_by(Reading.observed_at, Reading.id)
    ):
        if r.reachability == "unreachable":
            continue
        readings[r.device_id].append((r.id, r.observed_at))
        for c in r.conditions or []:
            codes[r.id][c] = ("condition", c.replace("_", " "), "condition")
    for a in AlertValue.select().order_by(AlertValue.id):
        codes[a.reading_id][a.code] = (a.severity, a.description or a.code.replace("_", " "), "alert")
    opened, closed = [], []
    for dev, rows in readings.items():
        running: dict[str, tuple[datetime, tuple[str, str, str]]] = {}
        for rid, at in rows:
            for code in list(running):
                if code not in codes.get(rid, {}):
                    began, (sev, desc, src) = running.pop(code)
                    if at >= scope.start:
                        closed.append(
                            AlertEpisode(
                                device=infos[dev],
                                code=code,
                                severity=sev,
                                description=desc,
                                source=src,
                                start=began,
                                end=at,
                                duration_seconds=(at - began).total_seconds(),
                            )
                        )
            for code, what in codes.get(rid, {}).items():
                running.setdefault(code, (at, what))
        for code, (began, (sev, desc, src)) in running.items():
            opened.append(
                AlertEpisode(
                    device=infos[dev],
                    code=code,
                    severity=sev,
                    description=desc,
                    source=src,
                    start=began,
                    end=None,
                    duration_seconds=(scope.end - began).total_seconds(),
                )
            )
    opened.sort(key=lambda e: (e.start, device_sort_key(e.device), e.code))
    closed.sort(key=lambda e: e.end or e.start, reverse=True)
    return Alerts(
        generated_at=scope.now,
        customer=scope.customer,
        start=scope.start,
        end=scope.end,
        open=opened,
        recent=closed,
    )


__all__ = ["alerts", "meters", "supplies"]


#: The meters page's template before HTML was streamed: the table grouped by Jinja's groupby (which
#: sorts by device id), every row of the report in one list.
METERS_TEMPLATE = Path(__file__).with_name("meters_before.html.j2")


def meters_html(report: Meters) -> str:
    """The meters page as the template above renders it (charts drawn as the report draws them)."""
    from jinja2 import ChoiceLoader, DictLoader

    from fsm_server.reports import html

    env = html._env()
    before = DictLoader({"meters_before.html.j2": METERS_TEMPLATE.read_text()})
    env.loader = ChoiceLoader([before, env.loader])  # type: ignore[list-item]
    title = "fsm meters report" + (f" - {report.customer}" if report.customer else "")
    return env.get_template("meters_before.html.j2").render(
        r=report, kind="meters", charts=html.counter_charts(report), title=title
    )

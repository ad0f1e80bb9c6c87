"""Meter reads per billing period: start and end meter of each counter of each device, and usage.

Rules (docs/reports.md, "Meters"):

- The start meter is the newest read at or before the period start; a device with none (added
  during the period) starts at its first read in the period, flagged ``added``.
- The end meter is the newest read before the period end; a device not read at all during the
  period is left out. A device that stopped reporting
  during the period (its last read is older than the expected report interval + grace before
  the period end) ends at its last read, flagged ``removed``.
- Usage is the sum of the steps between consecutive reads from start to end, so a counter that
  went backwards inside the period does not make usage negative: after a ``reset`` (or a
  ``device_swap``: a weak-identity device replaced by another) the counter is taken to have
  restarted from 0, so the step is the new value; after a ``wrap`` (a 32-bit counter passing
  4,294,967,295) the step is ``value + 2**32 - previous``. A ``jump`` (more pages than
  ``[ingest] max_pages_per_day`` allows) is counted as it is but flagged for a human to check.
  Flags come from the ingest pipeline; a decrease it did not flag (reports that arrived out of
  order) is classified here by the same policy.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import msgspec
from peewee import fn

from ..config import ReportsSection
from ..db.connect import translated
from ..db.loader import CounterPolicy
from ..db.models import CounterValue, Device
from .scope import DeviceInfo, Scope, chunks, device_sort_key, devices_in_scope

_WRAP = 2**32


class MeterRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    counter: str  # canonical name
    meter: str  # the ERP's name ([reports] meter_names), else the canonical one
    start_at: datetime
    start_value: int
    end_at: datetime
    end_value: int
    usage: int
    reads: int  # reads used, start and end included
    flags: list[str] = msgspec.field(default_factory=list)  # added, removed, reset, wrap, jump, device_swap


class Meters(msgspec.Struct, kw_only=True, tag="meters", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    rows: list[MeterRow]
    #: (observed_at, value) of the "total" counter (else the first counter) per device, for charts
    history: dict[int, list[tuple[datetime, int]]] = msgspec.field(default_factory=dict)


def previous_month(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last complete calendar month (UTC): the default billing period."""
    now = now or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    return start, first


def step(previous: int, value: int, flag: str | None) -> int:
    """The pages between two consecutive reads of one counter, given how ingest flagged the second."""
    if flag in ("reset", "device_swap"):
        return value
    if flag == "wrap":
        return value + _WRAP - previous
    return value - previous


def meters(scope: Scope, settings: ReportsSection | None = None, *, policy: CounterPolicy | None = None,
           with_history: bool = False) -> Meters:
    """Start/end meters and usage of every counter of every device in scope over the period."""
    cfg = settings or ReportsSection()
    policy = policy or CounterPolicy()
    removed_after = timedelta(hours=cfg.expected_report_hours + cfg.silence_grace_hours)
    with translated("cannot build the meters report"):
        infos = devices_in_scope(scope.customer)
        series: dict[tuple[int, str], list[CounterValue]] = defaultdict(list)
        strong: dict[int, bool] = {}
        first_seen: dict[int, datetime] = {}
        for part in chunks(infos):
            for d in Device.select(Device.id, Device.identity, Device.first_seen).where(Device.id.in_(part)):
                strong[d.id] = d.identity.startswith("sn:")
                first_seen[d.id] = d.first_seen
            # The newest read at or before the start, per (device, counter) ...
            before = (CounterValue.select(CounterValue.device, CounterValue.name,
                                          fn.MAX(CounterValue.observed_at).alias("at"))
                      .where(CounterValue.device.in_(part), CounterValue.observed_at <= scope.start)
                      .group_by(CounterValue.device, CounterValue.name))
            anchors = {(r.device_id, r.name): r.at for r in before}
            for at_part in chunks(sorted(set(anchors.values()))):
                q = (CounterValue.select()
                     .where(CounterValue.device.in_(part), CounterValue.observed_at.in_(at_part))
                     .order_by(CounterValue.observed_at, CounterValue.id))
                for c in q:
                    if anchors.get((c.device_id, c.name)) == c.observed_at:
                        series[(c.device_id, c.name)].append(c)
            # ... and every read in the period.
            q = (CounterValue.select()
                 .where(CounterValue.device.in_(part), CounterValue.observed_at > scope.start,
                        CounterValue.observed_at < scope.end)
                 .order_by(CounterValue.observed_at, CounterValue.id))
            for c in q:
                series[(c.device_id, c.name)].append(c)
    rows: list[MeterRow] = []
    history: dict[int, list[tuple[datetime, int]]] = {}
    for (dev, name), reads in series.items():
        if cfg.only_mapped_meters and name not in cfg.meter_names:
            continue
        reads = _dedupe(reads)
        if reads[-1].observed_at <= scope.start:
            continue  # not read during the period: gone before it began
        flags: list[str] = []
        if reads[0].observed_at > scope.start and first_seen[dev] > scope.start:
            flags.append("added")
        if min(scope.end, scope.now) - reads[-1].observed_at > removed_after:
            flags.append("removed")
        usage = 0
        for prev, cur in itertools.pairwise(reads):
            flag = cur.flag
            if flag is None and cur.value < prev.value:
                flag = policy.flag(prev.value, cur.value, cur.observed_at - prev.observed_at,
                                   strong_identity=strong[dev])
            usage += step(prev.value, cur.value, flag)
            if flag and flag not in flags:
                flags.append(flag)
        rows.append(MeterRow(device=infos[dev], counter=name, meter=cfg.meter_names.get(name, name),
                             start_at=reads[0].observed_at, start_value=reads[0].value,
                             end_at=reads[-1].observed_at, end_value=reads[-1].value, usage=usage,
                             reads=len(reads), flags=flags))
        if with_history and (name == "total" or dev not in history):
            history[dev] = [(r.observed_at, r.value) for r in reads]
    rows.sort(key=lambda r: (device_sort_key(r.device), r.device.id, r.counter))
    return Meters(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                  rows=rows, history=history)


def _dedupe(reads: list[CounterValue]) -> list[CounterValue]:
    """One read per moment (an alert report may carry the same observation as a periodic one)."""
    out: list[CounterValue] = []
    for r in reads:
        if out and out[-1].observed_at == r.observed_at:
            continue
        out.append(r)
    return out


__all__ = ["MeterRow", "Meters", "meters", "previous_month", "step"]

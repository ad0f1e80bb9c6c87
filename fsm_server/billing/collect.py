"""A period's meters collected from the readings: the meters report's rows as the database computes
them (``reports.meter_ends``: start/end reads, usage and flags, the period's reads staying in the
database), the envelope each read came from, and the flags that stop approval until a dealer
corrects or excludes the meter.

Flags (``BLOCKING``): ``reset``, ``wrap``, ``swap`` (a weak-identity device replaced), ``jump``
(more pages than ``[ingest] max_pages_per_day``), ``colour_over_total`` (a colour counter that
counted more pages than the device's total) and ``missing_end`` (the device stopped reporting
before the period ended: its end is its last read, not a read at the end).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from ..db.loader import CounterPolicy
from ..reports.meter_ends import meter_ends
from ..reports.meters import MeterRow
from ..reports.scope import Scope, chunks

BLOCKING = ("reset", "wrap", "swap", "jump", "colour_over_total", "missing_end")
#: The meters report's flag -> the billing flag (``added`` is not a doubt: the first read is the start).
_FROM_REPORT = {
    "reset": "reset",
    "wrap": "wrap",
    "device_swap": "swap",
    "jump": "jump",
    "removed": "missing_end",
}
COLOUR_COUNTERS = ("total_color",)

#: The envelope (client, seq, sha256) of each counter value of a chunk.
PROVENANCE_SQL = """
SELECT cv.id, c.name, e.seq, e.sha256
FROM counter_value cv JOIN reading r ON r.id = cv.reading_id JOIN envelope e ON e.id = r.envelope_id
JOIN client c ON c.id = e.client_id
WHERE {values}
"""


#: Where one number came from: the (client, seq, sha256) of the envelope that carried the read.
Source = tuple[str, int, str]


class Collected:
    """One meter of a period as collected: the report's row, its billing flags, its two sources."""

    __slots__ = ("end", "flags", "row", "start")

    def __init__(self, row: MeterRow, flags: list[str], start: Source, end: Source) -> None:
        self.row, self.flags, self.start, self.end = row, flags, start, end


def billing_flags(rows: Sequence[MeterRow]) -> list[list[str]]:
    """The billing flags of each of one device's rows."""
    total = next((r.usage for r in rows if r.counter == "total"), None)
    out = []
    for r in rows:
        flags = [_FROM_REPORT[f] for f in r.flags if f in _FROM_REPORT] if r.flags else []
        if total is not None and r.counter in COLOUR_COUNTERS and r.usage > total:
            flags.append("colour_over_total")
        out.append(flags)
    return out


def provenance(db: Database, value_ids: Iterable[int]) -> dict[int, Source]:
    """The envelope of each counter value."""
    found: dict[int, Source] = {}
    for part in chunks(sorted(set(value_ids)), 1000):
        where, params = sql.in_list(db, "cv.id", part)
        for vid, client, seq, digest in sql.rows(db, PROVENANCE_SQL.format(values=where), params):
            found[vid] = (client, seq, digest)
    return found


def collect(
    db: Database,
    customer: str,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: ReportsSection | None = None,
    policy: CounterPolicy | None = None,
) -> list[Collected]:
    """Every meter of ``customer``'s devices over [start, end), flagged, with provenance. A device
    added or removed during the period starts or ends at its first or last read."""
    scope = Scope(start=start, end=end, now=now, customer=customer)
    sources: dict[int, Source] = {}
    rows = list(meter_ends(db, scope, settings, policy=policy, sources=sources))
    with translated("cannot read where the billed meters came from"):
        sources |= provenance(db, [i for r in rows for i in (r.start_id, r.end_id) if i not in sources])
    out: list[Collected] = []
    by_device: dict[int, list[MeterRow]] = {}
    for r in rows:
        by_device.setdefault(r.device.id, []).append(r)
    for device_rows in by_device.values():
        for r, flags in zip(device_rows, billing_flags(device_rows), strict=True):
            out.append(Collected(r, flags, sources[r.start_id], sources[r.end_id]))
    return out


__all__ = [
    "BLOCKING",
    "COLOUR_COUNTERS",
    "PROVENANCE_SQL",
    "Collected",
    "Source",
    "billing_flags",
    "collect",
    "provenance",
]

"""A billing period's life: collected -> validated (by the customer, optional) -> approved (by the
dealer) -> exported. Corrections are stored beside the collected numbers with a note; a flagged
meter blocks approval until it is corrected or excluded. Nothing here checks who may act: the
callers (the CLI run by an administrator, the portal after re-authentication) do, and pass who it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import peewee

from fsm_common.collector import collector_paused

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from ..db.loader import CounterPolicy
from ..db.models import Customer
from ..errors import BillingError, NotFound
from ..reports.scope import bound_database, chunks
from .collect import BLOCKING, Collected, collect
from .models import BillingCorrection, BillingMeter, BillingPeriod, BillingPlan
from .periods import Plan, last_complete_period

STATES = ("collected", "validated", "approved", "exported")
MAX_NOTE = 2000
_Correction = tuple[int, int, int, datetime, str, str]  # start, end, usage, at, by, note


class MeterView(msgspec.Struct, kw_only=True):
    """A meter as billed: the collected numbers, and the newest correction's when there is one."""

    id: int
    device_id: int
    counter: str
    start_at: datetime
    end_at: datetime
    collected_start: int
    collected_end: int
    collected_usage: int
    start_value: int
    end_value: int
    usage: int
    flags: list[str]
    report_flags: list[str]
    start_source: tuple[str, int, str]  # (client, seq, sha256) of the envelope
    end_source: tuple[str, int, str]
    corrections: list[tuple[datetime, str, str]]  # (when, by, note), oldest first
    excluded: bool
    exclude_note: str | None

    @property
    def blocking(self) -> bool:
        """Flagged and neither corrected nor excluded: approval waits for it."""
        return bool(self.flags) and not self.corrections and not self.excluded


class Tally(msgspec.Struct, kw_only=True):
    """How many of a period's meters are in each condition."""

    meters: int = 0
    devices: int = 0
    flagged: int = 0
    to_settle: int = 0  # flagged, neither corrected nor excluded: approval waits for them
    corrected: int = 0
    excluded: int = 0


class PeriodView(msgspec.Struct, kw_only=True):
    """A period; ``meters`` is filled by ``show`` only (a period of 10,000 devices holds 40,000
    meters or more), ``tally`` by ``show`` and ``summary``."""

    id: int
    customer: str
    start: datetime
    end: datetime
    state: str
    collected_at: datetime
    validated_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    exported_at: datetime | None
    meters: list[MeterView] = msgspec.field(default_factory=list)
    tally: Tally | None = None

    @property
    def blocking(self) -> list[MeterView]:
        return [m for m in self.meters if m.blocking]


def _customer(name: str) -> Customer:
    c = Customer.get_or_none(Customer.name == name)
    if c is None:
        raise NotFound(f"no customer named {name!r}", hint="see `fsm-server customers list`")
    return c


def plan_of(customer: str) -> Plan:
    """The customer's billing plan (monthly from the 1st when none was set)."""
    with translated("cannot read the billing plan"):
        row = BillingPlan.get_or_none(BillingPlan.customer == _customer(customer))
    if row is None:
        return Plan()
    return Plan(
        cadence="quarterly" if row.cadence == "quarterly" else "monthly",
        anchor_day=row.anchor_day,
        anchor_month=row.anchor_month,
    )


def set_plan(customer: str, plan: Plan) -> None:
    with translated("cannot store the billing plan"):
        c = _customer(customer)
        BillingPlan.insert(
            customer=c, cadence=plan.cadence, anchor_day=plan.anchor_day, anchor_month=plan.anchor_month
        ).on_conflict(
            conflict_target=[BillingPlan.customer],
            update={
                BillingPlan.cadence: plan.cadence,
                BillingPlan.anchor_day: plan.anchor_day,
                BillingPlan.anchor_month: plan.anchor_month,
            },
        ).execute()


def collect_period(
    db: Database,
    customer: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    policy: CounterPolicy | None = None,
) -> PeriodView:
    """Collect (or collect again, while nothing was validated, corrected or excluded) the
    customer's period; by default the last complete one of its plan."""
    now = now or datetime.now(UTC)
    if start is None or end is None:
        start, end = last_complete_period(plan_of(customer), now)
    if end <= start:
        raise BillingError(f"period end {end:%Y-%m-%d} is not after its start {start:%Y-%m-%d}")
    if end > now:
        raise BillingError(
            f"the period {start:%Y-%m-%d} - {end:%Y-%m-%d} has not ended yet",
            hint="collect a period once its end has passed",
        )
    with collector_paused():
        found = collect(db, customer, start, end, now, settings, policy)
    with translated("cannot store the billing period"), db.peewee.atomic(), collector_paused():
        c = _customer(customer)
        period = BillingPeriod.get_or_none(BillingPeriod.customer == c, BillingPeriod.start == start)
        if period is not None:
            touched = (
                BillingMeter.select()
                .where(BillingMeter.period == period)
                .where(
                    BillingMeter.excluded
                    | BillingMeter.id.in_(BillingCorrection.select(BillingCorrection.meter))
                )
                .exists()
            )
            if period.state != "collected" or touched:
                raise BillingError(
                    f"the period of {customer} from {start:%Y-%m-%d} is {period.state} and was worked on; "
                    "it is not collected again",
                    hint="its corrections and exclusions stay as they are",
                )
            if period.end != end:
                raise BillingError(
                    f"{customer} already has a period from {start:%Y-%m-%d} to {period.end:%Y-%m-%d}"
                )
            BillingMeter.delete().where(BillingMeter.period == period).execute()
            period.collected_at = now
            period.save()
        else:
            period = BillingPeriod.create(
                customer=c, start=start, end=end, state="collected", collected_at=now
            )
        _insert_meters(db, period.id, found)
    return summary(period.id)


def periods(customer: str | None = None) -> list[PeriodView]:
    """Every period (of ``customer``), newest first, without their meters."""
    with translated("cannot list billing periods"):
        q = BillingPeriod.select(BillingPeriod, Customer.name).join(Customer)
        if customer is not None:
            q = q.where(Customer.name == customer)
        return [
            _period_view(p, p.customer.name) for p in q.order_by(BillingPeriod.start.desc(), Customer.name)
        ]


def show(period_id: int, *, to_settle_only: bool = False) -> PeriodView:
    """A period with its meters as billed (rows read as tuples: a period of 10,000 devices holds
    40,000 meters or more, and peewee objects would cost several times the query); only the
    meters still to settle with ``to_settle_only``."""
    db = bound_database()
    with translated("cannot read the billing period"):
        p = _period(period_id)
        view = _period_view(p, p.customer.name)
        view.meters = _meter_views(db, period_id, TO_SETTLE if to_settle_only else "")
        view.tally = _tally(db, period_id)
    return view


def device_meters(period_id: int, device_ids: Sequence[int]) -> list[MeterView]:
    """The meters as billed of a period's devices ``device_ids`` (a page of the period), in
    (device, counter) order: what ``show`` reads of them, without the rest of the period."""
    if not device_ids:
        return []
    db = bound_database()
    where, params = sql.in_list(db, "m.device_id", device_ids)
    with translated("cannot read the billing period"):
        return _meter_views(db, period_id, f" AND {where}", params)


def settle_flags(period_id: int) -> list[tuple[str, int]]:
    """(flag, how many of the period's meters still to settle carry it), by flag name: what
    ``exclude_to_settle`` can take, counted without reading the meters."""
    counts: Counter[str] = Counter()
    with translated("cannot read the billing period"):
        for flags, n in sql.rows(bound_database(), SETTLE_FLAGS_SQL, [period_id]):
            for flag in msgspec.json.decode(flags):
                counts[flag] += n
    return sorted(counts.items())


def period(period_id: int) -> PeriodView:
    """A period without its meters."""
    with translated("cannot read the billing period"):
        p = _period(period_id)
        return _period_view(p, p.customer.name)


def summary(period_id: int) -> PeriodView:
    """A period with its ``tally`` and without its meters."""
    view = period(period_id)
    with translated("cannot read the billing period"):
        view.tally = _tally(bound_database(), period_id)
    return view


def validate(period_id: int, by: str, *, now: datetime | None = None) -> PeriodView:
    """The customer confirms the collected meters (optional: a dealer may approve without it)."""
    with _changing(period_id, ("collected",), "validated") as p:
        p.validated_by, p.validated_at = by, now or datetime.now(UTC)
    return summary(period_id)


def approve(period_id: int, by: str, *, now: datetime | None = None) -> PeriodView:
    """The dealer approves the period for export: refused while a flagged meter is neither
    corrected nor excluded."""
    with _changing(period_id, ("collected", "validated"), "approved") as p:
        blocking = list(sql.rows(bound_database(), BLOCKING_SQL, [period_id]))
        if blocking:
            names = ", ".join(
                f"meter {mid} (device {device} {counter}: {' '.join(msgspec.json.decode(flags))})"
                for mid, device, counter, flags in blocking[:5]
            )
            more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
            raise BillingError(
                f"period {period_id} has {len(blocking)} flagged meter(s) to settle: {names}{more}",
                hint="correct each with `fsm-server billing correct METER --note ...` or exclude it "
                "with `fsm-server billing exclude METER --note ...`",
            )
        p.approved_by, p.approved_at = by, now or datetime.now(UTC)
    return summary(period_id)


def correct(
    meter_id: int,
    by: str,
    note: str,
    *,
    start_value: int | None = None,
    end_value: int | None = None,
    usage: int | None = None,
    now: datetime | None = None,
) -> MeterView:
    """Store a correction beside the collected meter: the values not given are the billed ones;
    usage defaults to end - start."""
    note = _note(note)
    with translated("cannot store the correction"), _db_atomic():
        m = _meter(meter_id)
        _editable(m.period)
        current = _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )
        start = current.start_value if start_value is None else start_value
        end = current.end_value if end_value is None else end_value
        billed = end - start if usage is None else usage
        for name, value in (("start", start), ("end", end), ("usage", billed)):
            if value < 0:
                raise BillingError(
                    f"a corrected {name} of {value} is negative",
                    hint="give the pages as the device counts them (0 or more)",
                )
        BillingCorrection.create(
            meter=m,
            start_value=start,
            end_value=end,
            usage=billed,
            note=note,
            corrected_by=by,
            corrected_at=now or datetime.now(UTC),
        )
        return _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )


def exclude(meter_id: int, by: str, note: str) -> MeterView:
    """Leave a meter out of the export (kept, with why)."""
    note = _note(note)
    with translated("cannot exclude the meter"), _db_atomic():
        m = _meter(meter_id)
        _editable(m.period)
        m.excluded, m.excluded_by, m.exclude_note = True, by, note
        m.save(only=[BillingMeter.excluded, BillingMeter.excluded_by, BillingMeter.exclude_note])
        return _meter_view(
            m,
            list(
                BillingCorrection.select().where(BillingCorrection.meter == m).order_by(BillingCorrection.id)
            ),
        )


def exclude_to_settle(period_id: int, by: str, note: str, *, flags: Sequence[str] = ()) -> int:
    """Leave every meter still to settle (with one of ``flags`` when given) out of the export, each
    with the same note, in one statement: how many. A period's hundreds of devices that stopped
    reporting are settled the same way; they are then listed among the excluded with the note."""
    note = _note(note)
    unknown = sorted(set(flags) - set(BLOCKING))
    if unknown:
        raise BillingError(
            f"no meter flag named {', '.join(unknown)}", hint=f"the flags are {', '.join(BLOCKING)}"
        )
    db = bound_database()
    # flags is a JSON list of names from BLOCKING, so a quoted name is found by LIKE alone
    which = " OR ".join(["m.flags LIKE ?"] * len(flags))
    query = EXCLUDE_TO_SETTLE_SQL.format(which=f" AND ({which})" if flags else "")
    with translated("cannot exclude the meters"), _db_atomic():
        _editable(_period(period_id))
        return sql.execute(db, query, [by, note, period_id, *(f'%"{f}"%' for f in flags)])


def mark_exported(period_id: int, digest: str, *, now: datetime | None = None) -> None:
    with _changing(period_id, ("approved", "exported"), "exported") as p:
        p.exported_at, p.export_sha256 = now or datetime.now(UTC), digest


# --- helpers ---------------------------------------------------------------------------------

_METER_COLS = (
    "period_id",
    "device_id",
    "counter",
    "start_at",
    "start_value",
    "end_at",
    "end_value",
    "usage",
    "flags",
    "report_flags",
    "start_client",
    "start_seq",
    "start_sha256",
    "end_client",
    "end_seq",
    "end_sha256",
    "excluded",
)
#: A period's meters in (device, counter) order, the columns ``_meter_row_view`` reads; ``{where}``
#: narrows them (``TO_SETTLE``, or some devices), its parameters after the period's.
METERS_SQL = """
SELECT id, device_id, counter, start_at, end_at, start_value, end_value, usage, flags, report_flags,
       start_client, start_seq, start_sha256, end_client, end_seq, end_sha256, excluded, exclude_note
FROM billing_meter m WHERE period_id = ?{where} ORDER BY device_id, counter
"""
#: ``METERS_SQL``'s ``{where}`` of the meters still to settle: flagged, neither corrected nor
#: excluded (``MeterView.blocking``).
TO_SETTLE = """ AND m.flags <> '[]' AND NOT m.excluded
AND NOT EXISTS (SELECT 1 FROM billing_correction c WHERE c.meter_id = m.id)"""
BLOCKING_SQL = f"""
SELECT m.id, m.device_id, m.counter, m.flags FROM billing_meter m
WHERE m.period_id = ?{TO_SETTLE} ORDER BY m.device_id, m.counter
"""
#: How many of a period's meters still to settle carry each list of flags.
SETTLE_FLAGS_SQL = f"""
SELECT m.flags, COUNT(*) FROM billing_meter m WHERE m.period_id = ?{TO_SETTLE} GROUP BY m.flags
"""
#: ``{which}``: only the meters with one of some flags.
EXCLUDE_TO_SETTLE_SQL = f"""
UPDATE billing_meter SET excluded = TRUE, excluded_by = ?, exclude_note = ?
WHERE id IN (SELECT m.id FROM billing_meter m WHERE m.period_id = ?{TO_SETTLE}{{which}})
"""
TALLY_SQL = """
SELECT COUNT(*), COUNT(DISTINCT m.device_id),
       SUM(CASE WHEN m.flags <> '[]' THEN 1 ELSE 0 END),
       SUM(CASE WHEN m.flags <> '[]' AND NOT m.excluded AND c.meter_id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN c.meter_id IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN m.excluded THEN 1 ELSE 0 END)
FROM billing_meter m
LEFT JOIN (SELECT DISTINCT x.meter_id FROM billing_correction x JOIN billing_meter y ON y.id = x.meter_id
           WHERE y.period_id = ?) c ON c.meter_id = m.id
WHERE m.period_id = ?
"""
#: The corrections of ``METERS_SQL``'s meters (the same ``{where}``), oldest first.
CORRECTIONS_SQL = """
SELECT c.meter_id, c.start_value, c.end_value, c.usage, c.corrected_at, c.corrected_by, c.note
FROM billing_correction c JOIN billing_meter m ON m.id = c.meter_id
WHERE m.period_id = ?{where} ORDER BY c.id
"""


def _insert_meters(db: Database, period_id: int, found: list[Collected]) -> None:
    """The collected meters of a period: PostgreSQL by COPY of text lines made here (a third of
    psycopg's ``write_row`` time for 40,000 meters), SQLite by the driver's executemany (peewee's
    multi-row INSERT costs ~10 µs a value in Python, the driver ~0.1)."""
    names = ", ".join(f'"{c}"' for c in _METER_COLS)
    with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # driver errors as peewee's
        cursor = db.peewee.cursor()
        if db.kind == "postgresql":
            line = _copy_lines(period_id)
            with cursor.copy(f"COPY billing_meter ({names}) FROM STDIN") as copy:
                for part in chunks(found, 5000):
                    copy.write("".join(map(line, part)))
            return
        rows = [
            (
                period_id,
                m.row.device.id,
                m.row.counter,
                sql.iso(m.row.start_at),
                m.row.start_value,
                sql.iso(m.row.end_at),
                m.row.end_value,
                m.row.usage,
                _json_list(m.flags),
                _json_list(m.row.flags),
                *m.start,
                *m.end,
                False,
            )
            for m in found
        ]
        marks = ", ".join([db.peewee.param] * len(_METER_COLS))
        cursor.executemany(f"INSERT INTO billing_meter ({names}) VALUES ({marks})", rows)


#: What COPY's text format escapes in a column's text (backslash first).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _Escaped(dict[str, str]):
    """Texts as COPY's text format writes them, each escaped once: the counter names, flags,
    clients and digests repeat across a period's meters."""

    def __missing__(self, value: str) -> str:
        out = self[value] = value.translate(_COPY_ESCAPES)
        return out


def _copy_lines(period_id: int) -> Callable[[Collected], str]:
    """A function giving a meter's ``_METER_COLS`` line of COPY's text format."""
    e = _Escaped()

    def line(m: Collected) -> str:
        r = m.row
        (sc, ss, sh), (ec, es, eh) = m.start, m.end
        return (
            f"{period_id}\t{r.device.id}\t{e[r.counter]}\t{sql.iso(r.start_at)}\t{r.start_value}\t"
            f"{sql.iso(r.end_at)}\t{r.end_value}\t{r.usage}\t{e[_json_list(m.flags)]}\t"
            f"{e[_json_list(r.flags)]}\t{e[sc]}\t{ss}\t{e[sh]}\t{e[ec]}\t{es}\t{e[eh]}\tf\n"
        )

    return line


def _json_list(flags: list[str]) -> str:
    return msgspec.json.encode(flags).decode() if flags else "[]"


def _tally(db: Database, period_id: int) -> Tally:
    meters, devices, flagged, to_settle, corrected, excluded = next(
        sql.rows(db, TALLY_SQL, [period_id, period_id])
    )
    return Tally(
        meters=meters,
        devices=devices,
        flagged=int(flagged or 0),
        to_settle=int(to_settle or 0),
        corrected=int(corrected or 0),
        excluded=int(excluded or 0),
    )


def _meter_views(db: Database, period_id: int, where: str, params: Sequence[object] = ()) -> list[MeterView]:
    """The period's meters ``where`` picks (``METERS_SQL``) with their corrections."""
    corrections: dict[int, list[_Correction]] = {}
    for meter_id, *c in sql.rows(db, CORRECTIONS_SQL.format(where=where), [period_id, *params]):
        start, end, usage, at, by, note = c
        corrections.setdefault(meter_id, []).append((start, end, usage, sql.utc(at), by, note))
    rows = sql.rows(db, METERS_SQL.format(where=where), [period_id, *params])
    return [_meter_row_view(r, corrections.get(r[0], [])) for r in rows]


def _meter_row_view(
    r: tuple[Any, ...], corrections: list[tuple[int, int, int, datetime, str, str]]
) -> MeterView:
    """A MeterView of a ``METERS_SQL`` row and its corrections (start, end, usage, at, by, note)."""
    last = corrections[-1] if corrections else None
    return MeterView(
        id=r[0],
        device_id=r[1],
        counter=r[2],
        start_at=sql.utc(r[3]),
        end_at=sql.utc(r[4]),
        collected_start=r[5],
        collected_end=r[6],
        collected_usage=r[7],
        start_value=r[5] if last is None else last[0],
        end_value=r[6] if last is None else last[1],
        usage=r[7] if last is None else last[2],
        flags=msgspec.json.decode(r[8]),
        report_flags=msgspec.json.decode(r[9]),
        start_source=(r[10], r[11], r[12]),
        end_source=(r[13], r[14], r[15]),
        corrections=[(at, by, note) for _, _, _, at, by, note in corrections],
        excluded=bool(r[16]),
        exclude_note=r[17],
    )


def _db_atomic() -> AbstractContextManager[object]:
    atomic: AbstractContextManager[object] = bound_database().peewee.atomic()
    return atomic


@contextmanager
def _changing(period_id: int, allowed: tuple[str, ...], new: str) -> Iterator[BillingPeriod]:
    with translated("cannot change the billing period"), _db_atomic():
        p = _period(period_id)
        if p.state not in allowed:
            raise BillingError(
                f"period {period_id} is {p.state}; it can become {new} only when {' or '.join(allowed)}"
            )
        yield p
        p.state = new
        p.save()


def _period(period_id: int) -> BillingPeriod:
    p = BillingPeriod.get_or_none(BillingPeriod.id == period_id)
    if p is None:
        raise NotFound(f"no billing period {period_id}", hint="see `fsm-server billing periods`")
    return p


def _meter(meter_id: int) -> BillingMeter:
    """The meter with its period (one query: settling hundreds of meters reads each once)."""
    m = (
        BillingMeter.select(BillingMeter, BillingPeriod)
        .join(BillingPeriod)
        .where(BillingMeter.id == meter_id)
        .get_or_none()
    )
    if m is None:
        raise NotFound(f"no billed meter {meter_id}", hint="see `fsm-server billing show PERIOD`")
    return m


def _editable(period: BillingPeriod) -> None:
    if period.state not in ("collected", "validated"):
        raise BillingError(f"period {period.id} is {period.state}: its meters no longer change")


def _note(note: str) -> str:
    note = note.strip()
    if not note:
        raise BillingError(
            "a correction or exclusion needs a note saying why",
            hint="give --note 'board replaced on the 14th, reading from the service report'",
        )
    if len(note) > MAX_NOTE:
        raise BillingError(f"the note has {len(note)} characters; at most {MAX_NOTE}")
    return note


def _period_view(p: BillingPeriod, customer: str) -> PeriodView:
    return PeriodView(
        id=p.id,
        customer=customer,
        start=p.start,
        end=p.end,
        state=p.state,
        collected_at=p.collected_at,
        validated_by=p.validated_by,
        approved_by=p.approved_by,
        approved_at=p.approved_at,
        exported_at=p.exported_at,
    )


def _meter_view(m: BillingMeter, corrections: list[BillingCorrection]) -> MeterView:
    last = corrections[-1] if corrections else None
    return MeterView(
        id=m.id,
        device_id=m.device_id,
        counter=m.counter,
        start_at=m.start_at,
        end_at=m.end_at,
        collected_start=m.start_value,
        collected_end=m.end_value,
        collected_usage=m.usage,
        start_value=m.start_value if last is None else last.start_value,
        end_value=m.end_value if last is None else last.end_value,
        usage=m.usage if last is None else last.usage,
        flags=list(m.flags),
        report_flags=list(m.report_flags),
        start_source=(m.start_client, m.start_seq, m.start_sha256),
        end_source=(m.end_client, m.end_seq, m.end_sha256),
        corrections=[(c.corrected_at, c.corrected_by, c.note) for c in corrections],
        excluded=m.excluded,
        exclude_note=m.exclude_note,
    )


__all__ = [
    "MAX_NOTE",
    "STATES",
    "MeterView",
    "PeriodView",
    "Tally",
    "approve",
    "collect_period",
    "correct",
    "device_meters",
    "exclude",
    "exclude_to_settle",
    "mark_exported",
    "period",
    "periods",
    "plan_of",
    "set_plan",
    "settle_flags",
    "show",
    "summary",
    "validate",
]

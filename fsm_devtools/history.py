"""Ninety days of a fleet's life for the demo, read by the real client at simulated dates.

The demo's printers are real walks (``demo/snmp-walks``), each one moment of one device.
``Aging`` turns a walk into the recording of the same printer some days earlier: its page
counters lower by the pages printed since (busy weekdays, quiet weekends), its supplies fuller
by what those pages used. One toner is replaced early and one printer jams for a few minutes,
so the reports have a replacement and an alert episode to show. Which OIDs hold page counters
is learnt from the client's own reading of the walk (``Device.sources``); supplies are the
Printer-MIB prtMarkerSuppliesTable rows that have a level and a capacity.

``fill`` runs the real client on every simulated day: snmpsim serves that day's recordings,
and ``Daemon.run(once=True)`` (what ``fsm-client run --once`` does), with its clock set to that
day, reads, seals and mails whatever is due: the daily periodic report, a status poll, alert
reports. The mails go through the real mail stack like today's report, and the dealer's server
ingests them from its IMAP mailbox minutes later (``Dealer``: what ``fsm-server ingest --once``
does, its pipeline's clock set to that day too), so the health report's delays are a day's.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from fsm_client.config import ClientConfig
from fsm_client.daemon import Daemon
from fsm_client.pmd.distribution.active import current_pool
from fsm_client.scan import scan
from fsm_client.snmp.snmpsim import Snmpsim
from fsm_protocol.schema import Device
from fsm_protocol.vocabulary import ERROR_STATE_BITS
from fsm_server import wiring
from fsm_server.context import ServerContext
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database

from .peers.mailstack import MailStack

#: Printer-MIB prtMarkerSuppliesLevel / MaxCapacity, then .<hrDeviceIndex>.<prtMarkerSuppliesIndex>
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9."
SUPPLY_MAX = "1.3.6.1.2.1.43.11.1.1.8."
#: hrPrinterDetectedErrorState, then .<hrDeviceIndex>
ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2."
#: Counters that do not grow with the pages printed (they stay as the walk has them).
NOT_PAGES = frozenset({"power_on", "jams"})
#: Percentage points a colorant uses over the whole history, and any other supply (drum, fuser).
COLORANT_POINTS = 55.0
OTHER_POINTS = 12.0
#: When the client runs on a simulated day (UTC): after the default "daily 06:00" report is due.
RUN_AT = time(6, 5)
#: The client's first run (installed that morning): its schedule starts counting from here.
INSTALLED_AT = time(5, 50)
#: How long after the client's mails the dealer's server ingests them.
INGEST_AFTER = timedelta(minutes=4)


@dataclass(frozen=True)
class Events:
    """What happens to the demo's fleet besides printing."""

    days: int = 90
    jam_printer: str = "brother-hl-5370dw"
    jam_days_ago: int = 9
    jam_from: time = time(10, 41)  # the status poll that sees it ...
    jam_until: time = time(10, 53)  # ... and the one that sees it cleared
    swap_printer: str = "sharp-mx-3570n"
    swap_supply: int = 4  # prtMarkerSuppliesIndex of its black toner
    swap_days_ago: int = 25
    swap_old_percent: float = 30.0  # the old toner was thrown away at this level (early)
    swap_points: float = 90.0  # what that toner uses over the whole history


@dataclass(frozen=True)
class Supply:
    level_oid: str
    capacity: int
    percent_today: float
    points: float  # percentage points used over the whole history
    swap_days_ago: int | None = None
    swap_old_percent: float = 0.0


@dataclass
class Aging:
    """One printer's walk and what it looked like ``k`` days ago (``recording(k)``)."""

    name: str
    lines: list[tuple[str, str, str]]  # (oid, tag, value) as in the walk
    counters: dict[str, int]  # OID of a page counter -> value today
    reference: int  # the printer's total pages today (the largest counter without one)
    supplies: list[Supply]
    pages: list[float]  # pages[j]: pages printed between the readings of days j + 1 and j ago
    error_state: str | None = None  # the OID of hrPrinterDetectedErrorState, if the walk has one
    _since: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._since = [0.0]
        for p in self.pages:
            self._since.append(self._since[-1] + p)

    def pages_since(self, days_ago: int) -> float:
        """Pages printed from the reading ``days_ago`` days ago until today's."""
        return self._since[days_ago]

    def percent(self, s: Supply, days_ago: int) -> float:
        per_page = s.points / self._since[-1] if self._since[-1] else 0.0
        if s.swap_days_ago is not None:
            since_swap = self.pages_since(s.swap_days_ago)
            if days_ago <= s.swap_days_ago:
                return 100.0 - per_page * (since_swap - self.pages_since(days_ago))
            return min(100.0, s.swap_old_percent + per_page * (self.pages_since(days_ago) - since_swap))
        return min(100.0, s.percent_today + per_page * self.pages_since(days_ago))

    def recording(self, days_ago: int, *, jammed: bool = False) -> str:
        """The walk as the printer answered ``days_ago`` days ago (0: today)."""
        share = self.pages_since(days_ago) / self.reference if self.reference else 0.0
        values = {oid: str(v - round(v * share)) for oid, v in self.counters.items()}
        for s in self.supplies:
            values[s.level_oid] = str(round(self.percent(s, days_ago) * s.capacity / 100))
        out = []
        for oid, tag, value in self.lines:
            if oid in values:
                value = values[oid]
            elif jammed and oid == self.error_state:
                value = _set_bit(value, ERROR_STATE_BITS.index("jammed"))
            out.append(f"{oid}|{tag}|{value}")
        return "\n".join(out) + "\n"


def _set_bit(hex_value: str, bit: int) -> str:
    """An hrPrinterDetectedErrorState value (hex) with ``bit`` set; bit 0 is the first byte's MSB."""
    raw = bytearray(bytes.fromhex(hex_value) or b"\0")
    while len(raw) <= bit // 8:
        raw.append(0)
    raw[bit // 8] |= 0x80 >> (bit % 8)
    return raw.hex()


def _parse(text: str) -> list[tuple[str, str, str]]:
    lines = []
    for line in text.splitlines():
        oid, tag, value = line.split("|", 2)
        lines.append((oid, tag, value))
    return lines


def _daily_pages(name: str, reference: int, days: int, today: date) -> list[float]:
    """Pages per day, busy on weekdays and quiet at weekends, for a printer that has printed
    ``reference`` pages in its life (the history never takes more than half of them)."""
    rng = random.Random(name)
    rate = min(400.0, max(15.0, reference / 800)) if reference else 40.0
    pages = []
    for j in range(days):
        weekday = (today - timedelta(days=j + 1)).weekday()
        factor = rng.uniform(0.7, 1.3) if weekday < 5 else rng.uniform(0.0, 0.1 if weekday == 5 else 0.02)
        pages.append(rate * factor)
    if reference and sum(pages) > reference / 2:
        scale = reference / 2 / sum(pages)
        pages = [p * scale for p in pages]
    return pages


def aging(name: str, walk: str, reading: Device, *, events: Events, today: date) -> Aging:
    """How printer ``name`` ages backwards from ``walk``, given the client's reading of it."""
    lines = _parse(walk)
    by_oid = {oid: value for oid, _, value in lines}
    counters: dict[str, int] = {}
    for counter, value in reading.counters.items():
        origin = reading.sources.get(f"counters.{counter}", "")
        if counter in NOT_PAGES or value <= 0:
            continue
        for oid in origin.split(","):
            if by_oid.get(oid, "").isdigit():
                counters[oid] = int(by_oid[oid])
    reference = reading.counters.get("total") or max(counters.values(), default=0)
    supplies = []
    for s in reading.supplies:
        rows = [
            oid for oid, _, _ in lines if oid.startswith(SUPPLY_LEVEL) and oid.split(".")[-1] == str(s.index)
        ]
        if not rows or s.level is None or not s.max or s.max <= 0 or not 0 <= s.level <= s.max:
            continue
        level_oid = rows[0]
        if by_oid.get(SUPPLY_MAX + level_oid[len(SUPPLY_LEVEL) :]) != str(s.max):
            continue
        today_pct = 100 * s.level / s.max
        colorant = s.kind in ("toner", "ink") or (s.kind == "other" and s.color is not None)
        if name == events.swap_printer and s.index == events.swap_supply:
            supplies.append(
                Supply(
                    level_oid,
                    s.max,
                    today_pct,
                    events.swap_points,
                    swap_days_ago=events.swap_days_ago,
                    swap_old_percent=events.swap_old_percent,
                )
            )
            continue
        points = min(COLORANT_POINTS if colorant else OTHER_POINTS, max(0.0, 99.0 - today_pct))
        supplies.append(Supply(level_oid, s.max, today_pct, points))
    error_state = next((oid for oid, tag, _ in lines if oid.startswith(ERROR_STATE) and tag == "4x"), None)
    return Aging(
        name=name,
        lines=lines,
        counters=counters,
        reference=reference,
        supplies=supplies,
        pages=_daily_pages(name, reference, events.days, today),
        error_state=error_state,
    )


async def read_walks(
    sim: Snmpsim,
    config: ClientConfig,
    data_dir: Path,
    addresses: dict[str, str],
    *,
    events: Events,
    today: date,
) -> dict[str, Aging]:
    """Read every printer once as its walk stands (the client's own reading says which OIDs are
    which counters), and make its ``Aging``. Call before anything is replaced."""
    pool = current_pool(config, data_dir)
    out = {}
    for name, address in addresses.items():
        creds = [c for c in config.credentials if c.name == name]
        [device] = await scan([address], config=config, pool=pool, credentials=creds)
        if device.reachability != "ok":
            raise RuntimeError(f"snmpsim did not answer for {name} at {address}: {device.warnings}")
        walk = (sim.data_dir / f"{sim.community(name)}.snmprec").read_text()
        out[name] = aging(name, walk, device, events=events, today=today)
    return out


def serve(sim: Snmpsim, printers: dict[str, Aging], days_ago: int) -> None:
    """Make snmpsim answer as the fleet did ``days_ago`` days ago (0: today)."""
    for name, p in printers.items():
        sim.replace(name, p.recording(days_ago))


class Clock:
    """The simulated time the daemon reads."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Dealer:
    """The dealer's server on the simulated days: it ingests its mailbox as ``fsm-server ingest
    --once`` does, with its pipeline's clock set to the moment given."""

    def __init__(self, server_config: Path, stack: MailStack) -> None:
        self.ctx = ServerContext.load(str(server_config), None)
        self.stack = stack
        self.clock = Clock(datetime.now(UTC))
        self.loaded = self.quarantined = 0
        self._db: Database | None = None

    def __enter__(self) -> Dealer:
        self._db = wiring.open_db(self.ctx)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._db is not None:
            self._db.close()

    async def ingest(self, at: datetime, mails: int) -> None:
        """Wait until ``mails`` have arrived, then ingest the mailbox at ``at``."""
        assert self._db is not None, "use Dealer as a context manager"
        if not mails:
            return
        self.stack.wait_for_messages(mails, user="dealer", timeout=30)
        self.clock.now = at
        pipeline = wiring.pipeline(self.ctx, self._db, now=self.clock)
        result = await IngestDaemon(
            pipeline, self.ctx.config.mailboxes, batch=self.ctx.config.ingest.batch
        ).run(once=True)
        self.loaded += result.tally.outcomes["loaded"]
        self.quarantined += result.tally.outcomes["quarantined"]


@dataclass
class Filled:
    first: datetime
    last: datetime
    runs: int
    readings: int
    reports: int
    alerts: int
    sent: int  # envelopes mailed
    failures: int
    loaded: int  # by the dealer's server
    quarantined: int


def fill(
    sim: Snmpsim,
    printers: dict[str, Aging],
    config: ClientConfig,
    data_dir: Path,
    dealer: Dealer,
    *,
    events: Events,
    today: date,
    say: Callable[[str], None] = print,
) -> Filled:
    """Run the client on each of the ``events.days`` days before ``today`` (at ``RUN_AT`` UTC, and
    at the jam's two status polls) against that day's recordings; the dealer ingests after each run."""
    start = datetime.combine(today - timedelta(days=events.days), INSTALLED_AT, UTC)
    clock = Clock(start)
    daemon = Daemon(config, data_dir, clock=clock)
    runs = 0

    async def run_at(moment: datetime) -> None:
        """The client runs at ``moment``; the dealer ingests what it mailed minutes later."""
        nonlocal runs
        clock.now = moment
        mailed = daemon.counts.sent
        await daemon.run(once=True, install_signals=False)
        runs += 1
        await dealer.ingest(moment + INGEST_AFTER, daemon.counts.sent - mailed)

    async def days() -> None:
        week_start, before = start, _tally(daemon, dealer)
        serve(sim, printers, events.days)
        await run_at(start)  # installed: no report yet, a first status poll
        for k in range(events.days, 0, -1):
            day = today - timedelta(days=k)
            serve(sim, printers, k)
            await run_at(datetime.combine(day, RUN_AT, UTC))
            if k == events.jam_days_ago and events.jam_printer in printers:
                jammer = printers[events.jam_printer]
                sim.replace(jammer.name, jammer.recording(k, jammed=True))
                await run_at(datetime.combine(day, events.jam_from, UTC))
                sim.replace(jammer.name, jammer.recording(k))
                await run_at(datetime.combine(day, events.jam_until, UTC))
            if k % 7 == 1:  # a line a week, the last on the eve of today
                now = _tally(daemon, dealer)
                say(
                    f"{week_start:%Y-%m-%d} .. {day:%Y-%m-%d}: {now[0] - before[0]} readings, "
                    f"{now[1] - before[1]} periodic and {now[2] - before[2]} alert reports, "
                    f"{now[3] - before[3]} mailed, {now[4] - before[4]} loaded"
                )
                week_start, before = datetime.combine(day + timedelta(days=1), RUN_AT, UTC), now

    try:
        asyncio.run(days())
    finally:
        daemon.store.close()
    c = daemon.counts
    return Filled(
        first=start,
        last=clock.now,
        runs=runs,
        readings=c.readings,
        reports=c.reports,
        alerts=c.alerts,
        sent=c.sent,
        failures=c.send_failures,
        loaded=dealer.loaded,
        quarantined=dealer.quarantined,
    )


def _tally(daemon: Daemon, dealer: Dealer) -> tuple[int, int, int, int, int]:
    c = daemon.counts
    return c.readings, c.reports, c.alerts, c.sent, dealer.loaded


__all__ = ["Aging", "Clock", "Dealer", "Events", "Filled", "aging", "fill", "read_walks", "serve"]

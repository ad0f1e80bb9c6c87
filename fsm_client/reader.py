"""Run a PMD against any ``SnmpSource`` and build one schema ``Device``.

The read is planned from the PMD: every scalar OID of every field (fallbacks included) is
fetched with batched GETs, tables are walked once each, then each field takes the first
source that yields a value after its transforms. ``Device.sources`` records the OID each
field came from. Bad values (wrong type, oversized, unparsable) never stop the read: the
field falls back to its next source and a warning says what was dropped.

>>> import asyncio
>>> from fsm_client.snmp.source import RecordingSource
>>> from fsm_client.pmd.authoring.loader import default_dirs, load_pool
>>> src = RecordingSource.from_text("1.3.6.1.2.1.1.1.0|4|SHARP MX-3570N\\n"
...                                  "1.3.6.1.2.1.43.5.1.1.17.1|4|6509415X00\\n")
>>> dev = asyncio.run(read_device(src, load_pool(default_dirs()), ip="192.0.2.1"))
>>> dev.manufacturer, dev.serial, dev.sources["serial"]
('Sharp', '6509415X00', '1.3.6.1.2.1.43.5.1.1.17.1')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec

from fsm_protocol import vocabulary
from fsm_protocol.schema import (
    SUPPLY_VALUE_RANGE,
    TICKS_RANGE,
    Alert,
    Capabilities,
    Device,
    Status,
    Supply,
    utcnow,
)

from . import normalize
from .errors import SnmpError, SnmpTimeout
from .pmd.authoring import enterprises, transforms
from .pmd.authoring.matcher import PmdPool
from .pmd.authoring.model import Lookup, Pmd, Source
from .snmp.source import SnmpSource, SnmpValue, oid_key

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_TYPE = "1.3.6.1.2.1.2.2.1.3"
IF_PHYS_ADDRESS = "1.3.6.1.2.1.2.2.1.6"
PRT_INPUT_TYPE = "1.3.6.1.2.1.43.8.2.1.2"
PRT_MEDIA_PATH_TYPE = "1.3.6.1.2.1.43.13.4.1.9"

#: OIDs per GET request: small enough for any agent's PDU size, large enough to be few.
GET_BATCH = 24
#: Longest identity string kept; a longer one is garbage (or an attack) and is dropped.
MAX_TEXT = 512
#: Ethernet-like ifType values (ethernetCsmacd, iso88023Csmacd, fastEther, fastEtherFX,
#: gigabitEthernet). The device's MAC is the first such interface by ifIndex with a non-zero
#: address (the wired port a dealer's records name); Wi-Fi (ieee80211, 71) and anything else
#: only when there is none (builtin any_mac).
ETHERNET_IF_TYPES = frozenset({6, 7, 62, 69, 117})
#: Largest number of rows read from an interface or media table.
MAX_SMALL_TABLE = 256
#: The identity a status poll reads: enough to tell which device answered at an address.
POLL_IDENTITY = ("manufacturer", "serial")

Kind = Literal["text", "int", "bool", "mac", "serial"]
_FIELD_KINDS: dict[str, Kind] = {
    "manufacturer": "text",
    "model": "text",
    "serial": "serial",
    "firmware": "text",
    "mac": "mac",
    "hostname": "text",
    "location": "text",
    "contact": "text",
    "color": "bool",
    "duplex": "bool",
    "trays": "int",
    "fax": "bool",
    "scan": "bool",
}
_BUILTIN_TABLES: dict[str, tuple[str, ...]] = {
    "ethernet_mac": (IF_TYPE, IF_PHYS_ADDRESS),
    "any_mac": (IF_PHYS_ADDRESS,),
    "color_colorants": (),  # the colorant table is walked for supplies anyway
    "input_count": (PRT_INPUT_TYPE,),
    "duplex_path": (PRT_MEDIA_PATH_TYPE,),
    "enterprise_maker": (),  # sysObjectID is always read
}


@dataclass
class _CompiledSource:
    source: Source
    step: transforms.Step


@dataclass
class Plan:
    """What to ask a device for, derived once per PMD."""

    fields: dict[str, list[_CompiledSource]]  # "serial", "capabilities.color", "counters.total"
    scalars: list[str]
    tables: list[str]


def _compile(sources: Sequence[Source]) -> list[_CompiledSource]:
    return [_CompiledSource(s, transforms.build(list(s.transforms))) for s in sources]


def plan_for(pmd: Pmd, *, status_only: bool = False) -> Plan:
    """The whole read, or with ``status_only`` what a status poll needs (POLL_IDENTITY, status,
    alerts): no counters, supplies, capabilities or interface tables."""
    fields: dict[str, list[_CompiledSource]] = {}
    for name in pmd.identity.__struct_fields__:
        if not status_only or name in POLL_IDENTITY:
            fields[name] = _compile(getattr(pmd.identity, name))
    if not status_only:
        for name in pmd.capabilities.__struct_fields__:
            fields[f"capabilities.{name}"] = _compile(getattr(pmd.capabilities, name))
        for name, sources in pmd.counters.items():
            fields[f"counters.{name}"] = _compile(sources)
        for i, extra in enumerate(pmd.supplies.extra):
            fields[f"supplies.extra.{i}.level"] = _compile(extra.level)
            fields[f"supplies.extra.{i}.max"] = _compile(extra.max)
    scalars: dict[str, None] = dict.fromkeys((SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME))
    tables: dict[str, None] = {}
    for compiled in fields.values():
        for c in compiled:
            if c.source.oid:
                scalars[c.source.oid] = None
            for o in c.source.oids:
                scalars[o] = None
            if c.source.builtin:
                tables.update(dict.fromkeys(_BUILTIN_TABLES[c.source.builtin]))
            if c.source.lookup:
                tables[c.source.lookup.key_column] = None
                tables[c.source.lookup.value_column] = None
    if not status_only:
        t = pmd.supplies.table
        # the columns the reader uses, not the whole entry: a quarter fewer varbinds per device
        tables.update(dict.fromkeys(_supply_columns(pmd)))
        tables[f"{t.colorant_entry}.{t.colorant_value}"] = None
        tables[pmd.status.console] = None
    tables[pmd.status.printer_entry] = None
    tables[pmd.status.device_status] = None
    if pmd.alerts.enabled:
        tables[pmd.alerts.entry] = None
    return Plan(fields=fields, scalars=list(scalars), tables=list(tables))


def _supply_columns(pmd: Pmd) -> list[str]:
    t = pmd.supplies.table
    return [
        f"{t.entry}.{c}"
        for c in dict.fromkeys((t.colorant_index, t.kind, t.description, t.unit, t.max, t.level))
    ]


_plans: dict[tuple[int, bool], tuple[Pmd, Plan]] = {}


def _cached_plan(pmd: Pmd, status_only: bool = False) -> Plan:
    key = (id(pmd), status_only)
    hit = _plans.get(key)
    if hit is not None and hit[0] is pmd:
        return hit[1]
    plan = plan_for(pmd, status_only=status_only)
    if len(_plans) > 1024:
        _plans.clear()
    _plans[key] = (pmd, plan)
    return plan


@dataclass
class Answers:
    """Everything the device answered, and what went wrong while asking (a caller that
    already read the system group passes it in, so it is not asked twice)."""

    values: dict[str, SnmpValue] = field(default_factory=dict)
    tables: dict[str, list[tuple[str, SnmpValue]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timed_out: bool = False


def _raw(v: SnmpValue | None) -> Any:
    if v is None or v.tag == "null":
        return None
    return v.value


def _rows(rows: list[tuple[str, SnmpValue]], prefix: str) -> dict[tuple[int, ...], SnmpValue]:
    """Table rows keyed by the OID arcs after ``prefix``."""
    n = len(oid_key(prefix))
    return {oid_key(o)[n:]: v for o, v in rows}


def _text(v: SnmpValue | None) -> str | None:
    return transforms.to_text(_raw(v)) if v is not None and v.tag in ("octets", "opaque") else None


def _int(v: SnmpValue | None) -> int | None:
    return v.as_int() if v is not None else None


class _Reader:
    def __init__(self, source: SnmpSource, pmd: Pmd, plan: Plan, answers: Answers) -> None:
        self.source, self.pmd, self.plan, self.a = source, pmd, plan, answers

    async def fetch(self) -> None:
        wanted = [o for o in self.plan.scalars if o not in self.a.values]
        for i in range(0, len(wanted), GET_BATCH):
            if self.a.timed_out:
                return
            try:
                self.a.values.update(await self.source.get(wanted[i : i + GET_BATCH]))
            except SnmpTimeout as exc:
                self.a.timed_out = True
                self.a.warnings.append(f"device stopped answering during the read: {exc.message}")
                return
            except SnmpError as exc:  # the agent answered something unusable: keep the rest
                self.a.warnings.append(f"GET of {len(wanted[i : i + GET_BATCH])} OIDs failed: {exc.message}")
        walk_many = getattr(self.source, "walk_many", None)
        if callable(walk_many):  # one GETBULK advances many short tables at once (PysnmpSource)
            await self._walk_together(walk_many)
            return
        for oid in self.plan.tables:
            if self.a.timed_out:
                return
            limit = self._limit(oid)
            try:
                rows = await self.source.walk(oid, max_rows=limit)
            except SnmpTimeout as exc:
                self.a.timed_out = True
                self.a.warnings.append(f"device stopped answering while walking {oid}: {exc.message}")
                return
            except SnmpError as exc:
                self.a.warnings.append(f"walk of {oid} failed: {exc.message}")
                continue
            if len(rows) >= limit:
                self.a.warnings.append(f"table {oid} has more than {limit} rows; read the first {limit}")
            self.a.tables[oid] = rows

    async def _walk_together(self, walk_many: Any) -> None:
        limits = {oid: self._limit(oid) for oid in self.plan.tables}
        try:
            tables: dict[str, list[tuple[str, SnmpValue]]] = await walk_many(limits)
        except SnmpTimeout as exc:
            self.a.timed_out = True
            self.a.warnings.append(f"device stopped answering while walking its tables: {exc.message}")
            return
        except SnmpError as exc:
            self.a.warnings.append(f"walk of {len(limits)} tables failed: {exc.message}")
            return
        for oid, rows in tables.items():
            if len(rows) >= limits[oid]:
                self.a.warnings.append(
                    f"table {oid} has more than {limits[oid]} rows; read the first {limits[oid]}"
                )
            self.a.tables[oid] = rows

    def _limit(self, oid: str) -> int:
        t = self.pmd.supplies.table
        if oid.startswith(t.entry + "."):
            return self.pmd.supplies.max_rows
        if oid == self.pmd.alerts.entry:
            return self.pmd.alerts.max_rows * 9
        return MAX_SMALL_TABLE

    # -- fields ------------------------------------------------------------------------

    def _source_value(self, s: Source) -> tuple[Any, str | None]:
        if s.oid is not None:
            return _raw(self.a.values.get(s.oid)), s.oid
        if s.oids:
            vals = [_raw(self.a.values.get(o)) for o in s.oids]
            return (None if any(v is None for v in vals) else vals), ",".join(s.oids)
        if s.value is not None:
            return s.value, "const"
        if s.builtin is not None:
            return self._builtin(s.builtin)
        if s.lookup is not None:
            return self._lookup(s.lookup)
        return None, None

    def _lookup(self, lk: Lookup) -> tuple[Any, str | None]:
        keys = _rows(self.a.tables.get(lk.key_column, []), lk.key_column)
        values = _rows(self.a.tables.get(lk.value_column, []), lk.value_column)

        def one(key: int | str) -> tuple[Any, str | None]:
            want = key if isinstance(key, int) else key.strip().lower()
            for idx, v in sorted(keys.items()):
                got: Any = v.as_int() if isinstance(want, int) else (_text(v) or "").lower()
                if got == want and idx in values:
                    return _raw(values[idx]), f"{lk.value_column}.{'.'.join(map(str, idx))}"
            return None, None

        if not isinstance(lk.key, list):
            return one(lk.key)
        found = [one(k) for k in lk.key]
        if any(v is None for v, _ in found):
            return None, None
        return [v for v, _ in found], ",".join(o for _, o in found if o)

    def _builtin(self, name: str) -> tuple[Any, str | None]:
        if name in ("ethernet_mac", "any_mac"):
            types = _rows(self.a.tables.get(IF_TYPE, []), IF_TYPE)
            for idx, v in sorted(_rows(self.a.tables.get(IF_PHYS_ADDRESS, []), IF_PHYS_ADDRESS).items()):
                if name == "ethernet_mac" and _int(types.get(idx)) not in ETHERNET_IF_TYPES:
                    continue
                raw = _raw(v)
                if isinstance(raw, bytes) and len(raw) == 6 and transforms.format_mac(raw):
                    return raw, f"{IF_PHYS_ADDRESS}.{'.'.join(map(str, idx))}"
            return None, None
        if name == "enterprise_maker":
            oid_v = self.a.values.get(SYS_OBJECT_ID)
            maker = enterprises.maker_of(
                oid_v.value
                if oid_v is not None and oid_v.tag == "oid" and isinstance(oid_v.value, str)
                else None
            )
            return maker, (SYS_OBJECT_ID if maker else None)
        if name == "input_count":
            rows = self.a.tables.get(PRT_INPUT_TYPE, [])
            return (len(rows) if rows else None), PRT_INPUT_TYPE
        if name == "duplex_path":
            rows = self.a.tables.get(PRT_MEDIA_PATH_TYPE, [])
            if not rows:
                return None, None
            return any(_int(v) in (4, 5) for _, v in rows), PRT_MEDIA_PATH_TYPE
        if name == "color_colorants":
            t = self.pmd.supplies.table
            col = f"{t.colorant_entry}.{t.colorant_value}"
            colours = {normalize.color_of(_text(v), None) for _, v in self.a.tables.get(col, [])}
            colours.discard(None)
            if not colours:
                return None, None
            return bool(colours - {"black"}), col
        return None, None

    def _coerce(self, name: str, kind: Kind, value: Any, origin: str | None) -> Any:
        if value is None:
            return None
        if kind == "int" or name.startswith("counters."):
            n = transforms.to_int(value)
            if n is None:
                self.a.warnings.append(f"{name}: {origin} gave {_show(value)}, not a number; ignored")
                return None
            if n < 0:  # -1/-2 are agents' way of saying "not counted", not garbage
                return None
            return n
        if kind == "bool":
            if isinstance(value, bool):
                return value
            n = transforms.to_int(value)
            if n is not None:
                return n > 0
            t = (transforms.to_text(value) or "").lower()
            return {"true": True, "yes": True, "false": False, "no": False}.get(t)
        if isinstance(value, bytes | str) and len(value) > MAX_TEXT:
            self.a.warnings.append(f"{name}: {origin} gave a {len(value)}-byte string; ignored")
            return None
        if kind == "mac":
            return transforms.format_mac(value)
        if isinstance(value, list):
            return None
        text = transforms.to_text(value)
        if text is None:
            return None
        if kind == "serial":
            return transforms.normalize_serial(text)
        if not text.isprintable():
            text = "".join(c for c in text if c.isprintable()).strip() or None
        return text

    def field(self, name: str) -> tuple[Any, str | None]:
        kind = _FIELD_KINDS.get(name.removeprefix("capabilities."), "int")
        for c in self.plan.fields.get(name, []):
            raw, origin = self._source_value(c.source)
            if raw is None:
                continue
            value = self._coerce(name, kind, c.step(raw), origin)
            if value is not None:
                return value, origin
        return None, None

    # -- tables ------------------------------------------------------------------------

    def supplies(self, sources: dict[str, str] | None = None) -> list[Supply]:
        """The supplies table's rows; ``sources`` gets ``supplies.<index>``: the OID of each
        supply's level (of its description when it has no level)."""
        t = self.pmd.supplies.table
        rows = {
            key: v
            for col in _supply_columns(self.pmd)
            for key, v in _rows(self.a.tables.get(col, []), t.entry).items()
        }
        colorants = {
            k: _text(v)
            for k, v in _rows(
                self.a.tables.get(f"{t.colorant_entry}.{t.colorant_value}", []),
                f"{t.colorant_entry}.{t.colorant_value}",
            ).items()
        }
        by_index: dict[tuple[int, ...], dict[int, SnmpValue]] = {}
        for key, v in rows.items():
            if len(key) < 2:
                continue
            by_index.setdefault(key[1:], {})[key[0]] = v
        describe = transforms.build(list(t.description_transforms))
        out: list[Supply] = []
        for idx, cols in sorted(by_index.items()):
            if t.level not in cols and t.description not in cols:
                continue
            level, max_ = self._int_col(cols, t.level, "level", idx), self._int_col(cols, t.max, "max", idx)
            kind = self._int_col(cols, t.kind, "type", idx)
            unit = self._int_col(cols, t.unit, "unit", idx)
            cidx = self._int_col(cols, t.colorant_index, "colorant index", idx)
            desc_raw = _raw(cols.get(t.description))
            if isinstance(desc_raw, bytes) and len(desc_raw) > MAX_TEXT:
                self.a.warnings.append(f"supply {idx[-1]}: {len(desc_raw)}-byte description cut")
                desc_raw = desc_raw[:MAX_TEXT]
            description = transforms.to_text(describe(desc_raw)) or ""
            colorant = colorants.get((idx[0], cidx)) if cidx and len(idx) > 1 else None
            if sources is not None:
                column = t.level if t.level in cols else t.description
                sources[f"supplies.{idx[-1]}"] = ".".join((t.entry, str(column), *map(str, idx)))
            out.append(
                normalize.supply(
                    index=idx[-1],
                    description=description,
                    kind_code=kind,
                    unit_code=unit,
                    level=level,
                    max_=max_,
                    colorant=colorant,
                    rules=self.pmd.supplies.rules,
                    low_percent=self.pmd.supplies.low_percent,
                    warnings=self.a.warnings,
                )
            )
        return out

    def extra_supplies(self, supplies: list[Supply], sources: dict[str, str]) -> list[Supply]:
        """Merge the PMD's supplies.extra into the table's supplies (see ExtraSupply)."""
        out = list(supplies)
        for i, extra in enumerate(self.pmd.supplies.extra):
            level, origin = self.field(f"supplies.extra.{i}.level")
            where = f"supplies.extra.{i}"
            level = normalize.in_range(level, SUPPLY_VALUE_RANGE, f"{where}.level", self.a.warnings)
            if level is None:
                continue
            max_, _ = self.field(f"supplies.extra.{i}.max")
            max_ = normalize.in_range(max_, SUPPLY_VALUE_RANGE, f"{where}.max", self.a.warnings)
            same = [n for n, s in enumerate(out) if s.kind == extra.kind and s.color == extra.color]
            if same and out[same[0]].percent is not None:
                continue
            pct, state = normalize.supply_state(
                level,
                max_,
                kind=extra.kind,
                description=extra.description,
                unit=extra.unit,
                rules=self.pmd.supplies.rules,
                low_percent=self.pmd.supplies.low_percent,
                warnings=self.a.warnings,
            )
            if same:
                n = same[0]
                out[n] = msgspec.structs.replace(
                    out[n], level=level, max=max_, unit=extra.unit, percent=pct, state=state
                )
                key = f"supplies.{out[n].index}" if out[n].index is not None else f"supplies.extra.{i}"
            else:
                out.append(
                    Supply(
                        description=extra.description,
                        kind=extra.kind,
                        color=extra.color,
                        level=level,
                        max=max_,
                        unit=extra.unit,
                        percent=pct,
                        state=state,
                    )
                )
                key = f"supplies.extra.{i}"
            if origin:
                sources[key] = origin
        return out

    def _int_col(self, cols: dict[int, SnmpValue], col: int, what: str, idx: tuple[int, ...]) -> int | None:
        v = cols.get(col)
        if v is None:
            return None
        n = v.as_int()
        if n is None:
            self.a.warnings.append(f"supply {idx[-1]}: {what} is {v.tag} {_show(v.value)}, not an integer")
        return n

    def status(self) -> Status:
        s = self.pmd.status
        printers = _rows(self.a.tables.get(s.printer_entry, []), s.printer_entry)
        # hrPrinterEntry rows are (column, hrDeviceIndex); the first printer row is the device.
        indexes = sorted({k[1:] for k in printers if len(k) >= 2})
        dev_idx = indexes[0] if indexes else (1,)
        printer_status = _int(printers.get((1, *dev_idx)))
        err = printers.get((2, *dev_idx))
        error_state = err.as_bytes() if err is not None and err.tag == "octets" else None
        if err is not None and err.tag != "octets":
            self.a.warnings.append(f"hrPrinterDetectedErrorState is {err.tag}, not an OCTET STRING; ignored")
        device_status = _int(_rows(self.a.tables.get(s.device_status, []), s.device_status).get(dev_idx))
        console_rows = self.a.tables.get(s.console, [])
        console = " / ".join(t for _, v in console_rows[:4] if (t := _text(v)))
        return normalize.status(
            device_status=device_status,
            printer_status=printer_status,
            error_state=error_state,
            console=console[:MAX_TEXT] if console else None,
        )

    def alerts(self) -> list[Alert]:
        if not self.pmd.alerts.enabled:
            return []
        entry = self.pmd.alerts.entry
        rows = _rows(self.a.tables.get(entry, []), entry)
        by_index: dict[tuple[int, ...], dict[int, SnmpValue]] = {}
        for key, v in rows.items():
            if len(key) >= 2:
                by_index.setdefault(key[1:], {})[key[0]] = v
        out = []
        for idx, cols in sorted(by_index.items()):
            if 7 not in cols:  # prtAlertCode is what makes a row an alert
                continue
            out.append(
                normalize.alert(
                    index=idx[-1],
                    severity=_int(cols.get(2)),
                    training=_int(cols.get(3)),
                    group=_int(cols.get(4)),
                    group_index=_int(cols.get(5)),
                    location=_int(cols.get(6)),
                    code=_int(cols.get(7)),
                    description=(_text(cols.get(8)) or "")[:MAX_TEXT],
                    time_ticks=_int(cols.get(9)),
                    warnings=self.a.warnings,
                )
            )
        return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


async def read_with_pmd(
    source: SnmpSource,
    pmd: Pmd,
    *,
    ip: str,
    now: datetime | None = None,
    answers: Answers | None = None,
    status_only: bool = False,
) -> Device:
    """Read a device with a given PMD (``pmd test`` and ``read_device`` use this); with
    ``status_only``, only POLL_IDENTITY, status and alerts (a status poll).

    The steps: fetch what the plan asks for, take each field from its first answering source
    (``sources`` records which), read the tables, infer what the device did not say, and judge
    how complete the reading is."""
    now = now or utcnow()
    a = answers or Answers()
    r = _Reader(source, pmd, _cached_plan(pmd, status_only), a)
    await r.fetch()
    sources: dict[str, str] = {}
    ident = _fields(r, "", pmd.identity.__struct_fields__, sources)
    caps = _fields(r, "capabilities.", pmd.capabilities.__struct_fields__, sources)
    counters = {k: v for k, v in _fields(r, "counters.", pmd.counters, sources).items() if v is not None}
    supplies = [] if status_only else _supplies(r, pmd, sources)
    status, alerts = _status_and_alerts(r, pmd, sources)
    _infer_capabilities(caps, counters, supplies)
    warnings, reachability = _completeness(a, source)
    descr = _text(a.values.get(SYS_DESCR))
    oid_v = a.values.get(SYS_OBJECT_ID)
    return Device(
        ip=ip,
        observed_at=now,
        reachability=reachability,
        pmd=pmd.id,
        manufacturer=ident["manufacturer"],
        model=ident["model"],
        serial=ident["serial"],
        firmware=ident["firmware"],
        mac=ident["mac"],
        hostname=ident["hostname"],
        location=ident["location"],
        contact=ident["contact"],
        sys_object_id=oid_v.value if oid_v is not None and isinstance(oid_v.value, str) else None,
        sys_descr=descr[:MAX_TEXT] if descr else None,
        uptime_ticks=normalize.in_range(_int(a.values.get(SYS_UPTIME)), TICKS_RANGE, "sysUpTime", warnings),
        capabilities=Capabilities(**caps),
        counters=counters,
        supplies=supplies,
        status=status,
        alerts=alerts,
        sources=sources,
        warnings=warnings,
    )


def _fields(r: _Reader, prefix: str, names: Iterable[str], sources: dict[str, str]) -> dict[str, Any]:
    """Each field ``prefix + name`` from its first answering source, noting that source."""
    out: dict[str, Any] = {}
    for name in names:
        value, origin = r.field(prefix + name)
        out[name] = value
        if value is not None and origin:
            sources[prefix + name] = origin
    return out


def _supplies(r: _Reader, pmd: Pmd, sources: dict[str, str]) -> list[Supply]:
    supplies = r.supplies(sources)
    if supplies:
        sources["supplies"] = pmd.supplies.table.entry
    return r.extra_supplies(supplies, sources)


def _status_and_alerts(r: _Reader, pmd: Pmd, sources: dict[str, str]) -> tuple[Status, list[Alert]]:
    """The status, and the alert table; a device without one gets alerts made from its conditions."""
    status = r.status()
    if status.printer or status.conditions:
        sources["status"] = pmd.status.printer_entry
    alerts = r.alerts()
    if alerts:
        sources["alerts"] = pmd.alerts.entry
    elif status.conditions:
        alerts = normalize.condition_alerts(status.conditions)
    return status, alerts


def _infer_capabilities(caps: dict[str, Any], counters: dict[str, int], supplies: list[Supply]) -> None:
    """Fill what the device did not say from what it shows: a device that counts fax pages can fax,
    one with a chromatic colorant prints colour."""
    for cap in ("fax", "scan", "duplex"):
        if caps[cap] is None and counters.get(cap, 0) > 0:
            caps[cap] = True
    if caps["color"] is None and supplies:
        chromatic = {s.color for s in supplies if s.kind in vocabulary.COLORANT_KINDS and s.color}
        if chromatic:
            caps["color"] = bool(chromatic - {"black", "photo_black", "matte_black", "gray", "light_gray"})


Reachability = Literal["ok", "partial", "unreachable"]


def _completeness(a: Answers, source: SnmpSource) -> tuple[list[str], Reachability]:
    """The reading's warnings (its own, then the session's) and whether the device answered it all."""
    warnings = list(a.warnings)
    session_warnings = getattr(source, "warnings", None)
    if isinstance(session_warnings, list):
        warnings.extend(w for w in session_warnings if isinstance(w, str) and w not in warnings)
    # a session that lost the device mid-read may have returned what it had without raising
    lost = getattr(source, "lost", False) is True
    return warnings, "partial" if a.timed_out or lost else "ok"


async def identify(source: SnmpSource) -> dict[str, SnmpValue]:
    """The system group values matching needs; raises SnmpTimeout when the device is silent."""
    return await source.get([SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME])


async def read_identified(
    source: SnmpSource,
    pool: PmdPool,
    system: dict[str, SnmpValue],
    *,
    ip: str,
    now: datetime | None = None,
    status_only: bool = False,
) -> Device:
    """Read a device whose system group (from ``identify``) is already known."""
    oid_v = system.get(SYS_OBJECT_ID)
    sys_oid = oid_v.value if oid_v is not None and isinstance(oid_v.value, str) else None
    pmd = pool.match(sys_oid, _text(system.get(SYS_DESCR)))
    return await read_with_pmd(
        source, pmd, ip=ip, now=now, answers=Answers(values=dict(system)), status_only=status_only
    )


async def read_device(source: SnmpSource, pool: PmdPool, *, ip: str, now: datetime | None = None) -> Device:
    """Identify the device, choose its PMD and read it. A silent device gives a Device with
    reachability "unreachable"; one that stops answering midway, "partial"."""
    now = now or utcnow()
    try:
        system = await identify(source)
    except SnmpTimeout as exc:
        return Device(ip=ip, observed_at=now, reachability="unreachable", warnings=[exc.message])
    return await read_identified(source, pool, system, ip=ip, now=now)


def unreachable(ip: str, reason: str, *, now: datetime | None = None) -> Device:
    return Device(ip=ip, observed_at=now or utcnow(), reachability="unreachable", warnings=[reason])


def device_json(device: Device) -> dict[str, Any]:
    """The ``scan --json`` shape of a reading: the schema Device with every key present."""
    data: dict[str, Any] = msgspec.to_builtins(device)
    for key in ("manufacturer", "model", "serial", "firmware", "mac", "hostname", "location", "pmd"):
        data.setdefault(key, None)
    for key, empty in (("counters", {}), ("supplies", []), ("alerts", []), ("sources", {}), ("warnings", [])):
        data.setdefault(key, empty)
    data["supplies"] = [
        {
            "index": s.index,
            "description": s.description,
            "kind": s.kind,
            "color": s.color,
            "level": s.level,
            "max": s.max,
            "unit": s.unit,
            "percent": s.percent,
            "state": s.state,
        }
        for s in device.supplies
    ]
    data.setdefault("status", {})
    data.setdefault("reachability", "ok")
    return data


__all__ = [
    "GET_BATCH",
    "Answers",
    "Plan",
    "device_json",
    "identify",
    "plan_for",
    "read_device",
    "read_identified",
    "read_with_pmd",
    "unreachable",
]

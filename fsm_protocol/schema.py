"""Report schema v1: what a client says about its devices, as strict msgspec Structs.

A ``Report`` is what gets sealed. One ``Device`` is one reading of one printer at one
moment (``observed_at``); its flat identity fields are the same ones ``fsm-client scan
--json`` prints. Raw Printer-MIB values are kept as read (supply sentinels -1/-2/-3,
32-bit counters as they are): interpretation (``percent``, ``state``) sits beside them,
never in their place.

>>> r = Report(client_id="acme-hq", customer="ACME", site="HQ", seq=1, kind="periodic",
...            created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), devices=[])
>>> decode_report(encode_report(r)) == r
True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from .errors import SchemaError, TooLarge, UnsupportedVersion

SCHEMA_VERSION = 1

#: Upper bound for an encoded report; decoding refuses anything larger before parsing.
MAX_REPORT_BYTES = 64 * 1024 * 1024

# -- text bounds -------------------------------------------------------------------------------------
# Every string has a length the server's columns hold (fsm_server/db/models.py takes these numbers).
# Text the client chooses (names from the vocabularies, customer, site, addresses) is refused when
# it is longer or holds a control character: only a broken or hostile client sends that. Text a
# printer sets (model, serial, location, descriptions, ...) is cleaned instead, so that one printer
# cannot stop its site's reports: control characters are removed, over-long text is cut, and the
# reading gets a warning saying so (see ``clean_report``).

#: Short vocabulary words: colour, alert severity and training, device and printer status.
WORD_CHARS = 32
#: Vocabulary names (supply kind and unit, alert code and group, conditions), counter names, addresses.
NAME_CHARS = 64
#: Customer and site names, PMD names; printer identity text (manufacturer, model, serial, ...).
LABEL_CHARS = 200
#: Free text a printer sets: location, contact, sysDescr, console, supply and alert descriptions
#: (fsm-client cuts SNMP strings at 512 bytes too).
TEXT_CHARS = 512

#: C0 controls and DEL. Tab, CR and LF become a blank when text is cleaned; the rest are dropped.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"

_Word = Annotated[str, msgspec.Meta(max_length=WORD_CHARS, pattern=_NO_CONTROLS)]
_Name = Annotated[str, msgspec.Meta(max_length=NAME_CHARS, pattern=_NO_CONTROLS)]
_Label = Annotated[str, msgspec.Meta(max_length=LABEL_CHARS, pattern=_NO_CONTROLS)]
_Oid = Annotated[str, msgspec.Meta(max_length=TEXT_CHARS, pattern=_NO_CONTROLS)]

#: Printer-set text of a Device: field -> longest it is kept.
DEVICE_TEXT: dict[str, int] = {
    "manufacturer": LABEL_CHARS,
    "model": LABEL_CHARS,
    "serial": LABEL_CHARS,
    "firmware": LABEL_CHARS,
    "hostname": LABEL_CHARS,
    "location": TEXT_CHARS,
    "contact": TEXT_CHARS,
    "sys_object_id": TEXT_CHARS,
    "sys_descr": TEXT_CHARS,
}

# -- number bounds (checked by the server's plausibility step, reason "implausible") ------------------
#: Largest report number, resend_of and counter the server stores (a signed 64-bit column).
MAX_SEQ = 2**63 - 1
#: Printer-MIB supply level and max capacity: Integer32 with the sentinels -1 (other/unlimited),
#: -2 (unknown), -3 (some remaining); up to 2³²-1 for vendor tables that use Gauge32.
SUPPLY_VALUE_RANGE = (-3, 2**32 - 1)
#: A percent is level/max: above 100 when a device counts past its nominal capacity, never tenfold.
SUPPLY_PERCENT_RANGE = (0.0, 1000.0)
#: Table indexes and other Integer32 values (prtMarkerSuppliesIndex, prtAlertIndex, ...).
INT32_RANGE = (-(2**31), 2**31 - 1)
#: TimeTicks (sysUpTime, prtAlertTime).
TICKS_RANGE = (0, 2**32 - 1)
#: Input trays a device may report.
TRAYS_RANGE = (0, 255)

ReportKind = Literal["periodic", "alert", "inventory", "resend"]
REPORT_KINDS: tuple[str, ...] = ("periodic", "alert", "inventory", "resend")

#: Why a supply has the percent it has (or has none).
SupplyState = Literal[
    "ok",  # level and max known, percent computed
    "low",  # computed percent at or under the PMD's low threshold, or vendor says low
    "empty",  # level 0, or vendor says empty
    "unlimited",  # level or max -1 (RFC 3805 "other"/no restriction)
    "unknown",  # level or max -2 (RFC 3805 "unknown"), or no value read
    "some_remaining",  # level -3 (RFC 3805 "some remaining")
    "invalid",  # the device answered a value that makes no sense (e.g. max 0)
]

#: Whether the device answered the whole read.
Reachability = Literal["ok", "partial", "unreachable"]


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    pass


class Supply(_Base, kw_only=True):
    """One consumable: toner, ink, drum, waste box, fuser, ..."""

    index: int | None = None  # Printer-MIB prtMarkerSuppliesIndex where there is one
    description: str = ""
    kind: _Name = "other"  # vocabulary.SUPPLY_KINDS
    color: _Word | None = None  # vocabulary.COLORS
    level: int | None = None  # raw level, sentinels kept
    max: int | None = None  # raw max capacity, sentinels kept
    unit: _Name | None = None  # Printer-MIB prtMarkerSuppliesSupplyUnit name
    percent: float | None = None
    state: SupplyState = "unknown"


class Alert(_Base, kw_only=True):
    """One active condition: a prtAlertTable row or a decoded error-state bit."""

    code: _Name  # vocabulary.ALERT_CODES (Printer-MIB PrtAlertCodeTC names) or a condition name
    severity: _Word = "other"  # critical, warning, warning_binary_change_event, other
    group: _Name | None = None  # PrtAlertGroupTC name (marker_supplies, input, cover, ...)
    group_index: int | None = None
    location: int | None = None
    description: str = ""
    index: int | None = None  # prtAlertIndex
    training: _Word | None = None
    time_ticks: int | None = None  # prtAlertTime (sysUpTime at the event)


class Status(_Base, kw_only=True):
    device: _Word | None = None  # hrDeviceStatus: unknown, running, warning, testing, down
    printer: _Word | None = None  # hrPrinterStatus: other, unknown, idle, printing, warmup
    conditions: list[_Name] = []  # hrPrinterDetectedErrorState bits by name
    console: str | None = None  # front-panel text


class Capabilities(_Base, kw_only=True):
    color: bool | None = None
    duplex: bool | None = None
    trays: int | None = None
    fax: bool | None = None
    scan: bool | None = None


class Device(_Base, kw_only=True):
    """One reading of one device."""

    ip: _Name
    observed_at: datetime
    reachability: Reachability = "ok"
    pmd: _Label | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    mac: _Name | None = None
    hostname: str | None = None
    location: str | None = None
    contact: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    uptime_ticks: int | None = None
    capabilities: Capabilities = msgspec.field(default_factory=Capabilities)
    counters: dict[_Name, int] = {}
    supplies: list[Supply] = []
    status: Status = msgspec.field(default_factory=Status)
    alerts: list[Alert] = []
    sources: dict[_Label, _Oid] = {}  # field -> OID it came from
    warnings: list[str] = []


class Report(_Base, kw_only=True):
    """A report as sealed into one envelope."""

    version: int = SCHEMA_VERSION
    client_id: _Name
    customer: _Label = ""
    site: _Label = ""
    seq: int
    kind: ReportKind
    created_at: datetime
    sealed_at: datetime | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    resend_of: int | None = None  # original seq when kind == "resend"
    # The client's active PMD bundle: an installed set's name ("v<version>-<digest>") or "shipped"
    # (the PMD files of the client's release). Optional: reports of older clients do not carry it.
    pmd_bundle: _Label | None = None
    devices: list[Device] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Report)


def encode_report(report: Report) -> bytes:
    """Serialise a report to its canonical JSON bytes."""
    return _encoder.encode(report)


def decode_report(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_REPORT_BYTES) -> Report:
    """Parse and validate report bytes; refuses oversize input before parsing."""
    if len(data) > max_bytes:
        raise TooLarge(
            f"report is {len(data)} bytes, over the limit of {max_bytes}",
            hint="raise the report size limit only if such reports are expected",
        )
    try:
        report = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise SchemaError(f"report does not match schema v{SCHEMA_VERSION}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise SchemaError(f"report is not valid JSON: {exc}") from exc
    if report.version != SCHEMA_VERSION:
        raise UnsupportedVersion(f"report schema version {report.version} is not supported (want 1)")
    stamps = (
        report.created_at,
        report.sealed_at,
        report.period_start,
        report.period_end,
        *(d.observed_at for d in report.devices),
    )
    for when in stamps:
        if when is not None and when.tzinfo is None:
            raise SchemaError(f"timestamp {when.isoformat()!r} has no time zone; v1 requires UTC offsets")
    return clean_report(report)


def clean_text(value: str, limit: int) -> tuple[str, list[str]]:
    """``value`` without control characters (tab, CR, LF read as a blank) and cut to ``limit``
    characters, with what was done to it (empty when nothing was)."""
    done: list[str] = []
    if CONTROL_CHARS.search(value):
        n = len(CONTROL_CHARS.findall(value))
        value = CONTROL_CHARS.sub(lambda m: " " if m.group() in "\t\r\n" else "", value)
        done.append(f"{n} control character{'s' if n > 1 else ''} removed")
    if len(value) > limit:
        done.append(f"{len(value)} characters, cut to {limit}")
        value = value[:limit]
    return value, done


def _clean_device(d: Device) -> Device:
    warnings: list[str] = []
    changes: dict[str, object] = {}

    def clean(what: str, value: str, limit: int) -> str:
        value, done = clean_text(value, limit)
        warnings.extend(f"{what}: {x}" for x in done)
        return value

    for name, limit in DEVICE_TEXT.items():
        value = getattr(d, name)
        if value is not None:
            new = clean(name, value, limit)
            if new != value:
                changes[name] = new
    if d.status.console is not None:
        console = clean("console", d.status.console, TEXT_CHARS)
        if console != d.status.console:
            changes["status"] = msgspec.structs.replace(d.status, console=console)
    for attr, items in (("supplies", d.supplies), ("alerts", d.alerts)):
        kept: list[Supply | Alert] = []
        for item in items:
            what = ("supply" if attr == "supplies" else "alert") + (f" {item.index}" if item.index else "")
            text = clean(f"{what} description", item.description, TEXT_CHARS)
            kept.append(item if text == item.description else msgspec.structs.replace(item, description=text))
        if any(a is not b for a, b in zip(kept, items, strict=True)):
            changes[attr] = kept
    own = [clean_text(w, TEXT_CHARS)[0] for w in d.warnings]
    if own != d.warnings or warnings:
        changes["warnings"] = own + warnings
    return msgspec.structs.replace(d, **changes) if changes else d


def clean_report(report: Report) -> Report:
    """The report with the text printers set made storable (see ``DEVICE_TEXT``); each change is a
    warning on its reading. Text the client chooses is never changed: decoding refuses it."""
    devices = [_clean_device(d) for d in report.devices]
    if all(a is b for a, b in zip(devices, report.devices, strict=True)):
        return report
    return msgspec.structs.replace(report, devices=devices)


def utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "CONTROL_CHARS",
    "DEVICE_TEXT",
    "INT32_RANGE",
    "LABEL_CHARS",
    "MAX_REPORT_BYTES",
    "MAX_SEQ",
    "NAME_CHARS",
    "REPORT_KINDS",
    "SCHEMA_VERSION",
    "SUPPLY_PERCENT_RANGE",
    "SUPPLY_VALUE_RANGE",
    "TEXT_CHARS",
    "TICKS_RANGE",
    "TRAYS_RANGE",
    "WORD_CHARS",
    "Alert",
    "Capabilities",
    "Device",
    "Reachability",
    "Report",
    "ReportKind",
    "Status",
    "Supply",
    "SupplyState",
    "clean_report",
    "clean_text",
    "decode_report",
    "encode_report",
    "utcnow",
]

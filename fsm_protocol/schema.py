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

from datetime import UTC, datetime
from typing import Literal

import msgspec

from .errors import SchemaError, TooLarge, UnsupportedVersion

SCHEMA_VERSION = 1

#: Upper bound for an encoded report; decoding refuses anything larger before parsing.
MAX_REPORT_BYTES = 64 * 1024 * 1024

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
    kind: str = "other"  # vocabulary.SUPPLY_KINDS
    color: str | None = None  # vocabulary.COLORS
    level: int | None = None  # raw level, sentinels kept
    max: int | None = None  # raw max capacity, sentinels kept
    unit: str | None = None  # Printer-MIB prtMarkerSuppliesSupplyUnit name
    percent: float | None = None
    state: SupplyState = "unknown"


class Alert(_Base, kw_only=True):
    """One active condition: a prtAlertTable row or a decoded error-state bit."""

    code: str  # vocabulary.ALERT_CODES (Printer-MIB PrtAlertCodeTC names) or a condition name
    severity: str = "other"  # critical, warning, warning_binary_change_event, other
    group: str | None = None  # PrtAlertGroupTC name (marker_supplies, input, cover, ...)
    group_index: int | None = None
    location: int | None = None
    description: str = ""
    index: int | None = None  # prtAlertIndex
    training: str | None = None
    time_ticks: int | None = None  # prtAlertTime (sysUpTime at the event)


class Status(_Base, kw_only=True):
    device: str | None = None  # hrDeviceStatus: unknown, running, warning, testing, down
    printer: str | None = None  # hrPrinterStatus: other, unknown, idle, printing, warmup
    conditions: list[str] = []  # hrPrinterDetectedErrorState bits by name
    console: str | None = None  # front-panel text


class Capabilities(_Base, kw_only=True):
    color: bool | None = None
    duplex: bool | None = None
    trays: int | None = None
    fax: bool | None = None
    scan: bool | None = None


class Device(_Base, kw_only=True):
    """One reading of one device."""

    ip: str
    observed_at: datetime
    reachability: Reachability = "ok"
    pmd: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    mac: str | None = None
    hostname: str | None = None
    location: str | None = None
    contact: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    uptime_ticks: int | None = None
    capabilities: Capabilities = msgspec.field(default_factory=Capabilities)
    counters: dict[str, int] = {}
    supplies: list[Supply] = []
    status: Status = msgspec.field(default_factory=Status)
    alerts: list[Alert] = []
    sources: dict[str, str] = {}  # field -> OID it came from
    warnings: list[str] = []


class Report(_Base, kw_only=True):
    """A report as sealed into one envelope."""

    version: int = SCHEMA_VERSION
    client_id: str
    customer: str = ""
    site: str = ""
    seq: int
    kind: ReportKind
    created_at: datetime
    sealed_at: datetime | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    resend_of: int | None = None  # original seq when kind == "resend"
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
    for when in (report.created_at, *(d.observed_at for d in report.devices)):
        if when.tzinfo is None:
            raise SchemaError(f"timestamp {when.isoformat()!r} has no time zone; v1 requires UTC offsets")
    return report


def utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "MAX_REPORT_BYTES",
    "REPORT_KINDS",
    "SCHEMA_VERSION",
    "Alert",
    "Capabilities",
    "Device",
    "Reachability",
    "Report",
    "ReportKind",
    "Status",
    "Supply",
    "SupplyState",
    "decode_report",
    "encode_report",
    "utcnow",
]

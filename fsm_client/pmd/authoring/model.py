"""What a PMD file holds, as strict msgspec Structs (unknown keys are refused).

The annotated reference is docs/pmd-format.md; the defaults written there are the ones
declared here. A loaded ``Pmd`` is already merged with the files it extends.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

#: Values computed from tables rather than read from one OID.
Builtin = Literal[
    "ethernet_mac",  # first ifTable row by ifIndex that is Ethernet-like with a non-zero ifPhysAddress
    "any_mac",  # first ifTable row by ifIndex with a non-zero 6-byte ifPhysAddress
    "color_colorants",  # true when prtMarkerColorantTable names a colour other than black
    "input_count",  # rows of prtInputTable (paper trays)
    "duplex_path",  # true when a prtMediaPathType row is long- or short-edge duplex
    "enterprise_maker",  # the maker registered for sysObjectID's enterprise number (enterprises.py)
]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Lookup(_Strict):
    """A value from a vendor table of (type, value) rows: walk ``key_column``, find the row
    whose value equals ``key`` (a number, or a text compared case-insensitively), and take
    ``value_column`` at that row. With a list of keys the value is the list of their values
    (all must be present), for `sum`."""

    key_column: str
    value_column: str
    key: int | str | list[int | str]


class Source(_Strict):
    """One place a value may come from. Exactly one of ``oid``, ``oids``, ``value``,
    ``builtin``, ``lookup``."""

    oid: str | None = None  # a scalar instance OID, read with GET
    oids: list[str] = []  # several instance OIDs: the value is the list, for `sum`/`difference`
    value: str | int | bool | None = None  # a constant
    builtin: Builtin | None = None
    lookup: Lookup | None = None
    transforms: list[str | dict[str, Any]] = []


class Match(_Strict):
    """When this PMD applies. A PMD with no rule never matches (it can still be extended)."""

    sys_object_id: list[str] = []  # dotted prefixes of sysObjectID, matched at a dot boundary
    sys_descr: list[str] = []  # regular expressions searched in sysDescr (use (?i) for case)
    priority: int = 0  # the highest priority among matching PMDs wins


class Identity(_Strict):
    manufacturer: list[Source] = []
    model: list[Source] = []
    serial: list[Source] = []
    firmware: list[Source] = []
    mac: list[Source] = []
    hostname: list[Source] = []
    location: list[Source] = []
    contact: list[Source] = []


class CapabilitySources(_Strict):
    color: list[Source] = []
    duplex: list[Source] = []
    trays: list[Source] = []
    fax: list[Source] = []
    scan: list[Source] = []


class LevelMeaning(_Strict):
    """What a vendor-coded level means: a percent to show and/or a state."""

    percent: float | None = None
    state: Literal["ok", "low", "empty", "unlimited", "unknown", "some_remaining", "invalid"] | None = None


class LevelRule(_Strict):
    """Re-reads supply levels of a vendor scale. A rule applies to a supply when every
    ``when_*`` condition given holds; the first applicable rule wins."""

    when_max: list[int] = []  # raw prtMarkerSuppliesMaxCapacity values
    when_kind: list[str] = []  # supply kinds (vocabulary.SUPPLY_KIND_NAMES)
    when_unit: list[str] = []  # supply units (vocabulary.SUPPLY_UNITS names, e.g. "percent")
    when_description: str | None = None  # regular expression searched in the description
    levels: dict[str, LevelMeaning] = {}  # raw level (as text) -> meaning
    max: int | None = None  # treat max as this (e.g. 100 when the device sends -2 with percents)
    clamp: bool = False  # a level above max counts as max (else it is read as is, with a warning)


class SupplyTable(_Strict):
    """Where the supplies table lives; defaults are Printer-MIB prtMarkerSuppliesTable."""

    entry: str = "1.3.6.1.2.1.43.11.1.1"  # walked once; columns below are relative to it
    colorant_index: int = 3
    description: int = 6
    kind: int = 5
    unit: int = 7
    max: int = 8
    level: int = 9
    colorant_entry: str = "1.3.6.1.2.1.43.12.1.1"  # prtMarkerColorantTable
    colorant_value: int = 4
    description_transforms: list[str | dict[str, Any]] = msgspec.field(
        default_factory=lambda: ["hex_text", "printable"]
    )


class ExtraSupply(_Strict):
    """A supply a vendor reports outside the supplies table (a scalar, a binary block).

    It fills in a table supply of the same kind and colour whose level is a sentinel
    (the table keeps its index and description), is ignored when such a supply already
    has a percent, and is added as a supply of its own otherwise. With no level read it
    is left out."""

    description: str
    kind: str = "other"  # vocabulary.SUPPLY_KIND_NAMES
    color: str | None = None  # vocabulary.COLORS
    unit: str | None = None  # vocabulary.SUPPLY_UNITS names
    level: list[Source] = []
    max: list[Source] = []


class Supplies(_Strict):
    table: SupplyTable = msgspec.field(default_factory=SupplyTable)
    low_percent: float = 10.0  # at or under this percent a supply's state is "low"
    rules: list[LevelRule] = []
    extra: list[ExtraSupply] = []
    max_rows: int = 200


class StatusSources(_Strict):
    """Where status lives; each is walked (small tables) so the printer's row is found by index."""

    printer_entry: str = "1.3.6.1.2.1.25.3.5.1"  # hrPrinterEntry: .1 status, .2 detected error state
    device_status: str = "1.3.6.1.2.1.25.3.2.1.5"  # hrDeviceStatus column, row of the printer
    console: str = "1.3.6.1.2.1.43.16.5.1.2"  # prtConsoleDisplayBufferText column


class AlertSources(_Strict):
    entry: str = "1.3.6.1.2.1.43.18.1.1"  # prtAlertTable
    max_rows: int = 200
    enabled: bool = True


class Pmd(_Strict):
    """One device family's read instructions."""

    id: str = ""  # the file name without .toml; set by the loader
    name: str = ""
    extends: str | None = None  # default "printer-mib" (except for printer-mib itself)
    manufacturer: str | None = None  # used when no identity.manufacturer source gives a value
    match: Match = msgspec.field(default_factory=Match)
    identity: Identity = msgspec.field(default_factory=Identity)
    capabilities: CapabilitySources = msgspec.field(default_factory=CapabilitySources)
    counters: dict[str, list[Source]] = {}
    supplies: Supplies = msgspec.field(default_factory=Supplies)
    status: StatusSources = msgspec.field(default_factory=StatusSources)
    alerts: AlertSources = msgspec.field(default_factory=AlertSources)
    chain: list[str] = []  # set by the loader: this id, then every id it extends


__all__ = [
    "AlertSources",
    "Builtin",
    "CapabilitySources",
    "ExtraSupply",
    "Identity",
    "LevelMeaning",
    "LevelRule",
    "Lookup",
    "Match",
    "Pmd",
    "Source",
    "StatusSources",
    "Supplies",
    "SupplyTable",
]

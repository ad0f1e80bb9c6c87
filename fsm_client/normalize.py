"""Raw SNMP values to the report schema's meaning: supplies, status, alerts.

The rules that decide what a dealer sees, in one place:

* A supply keeps its raw ``level`` and ``max``. ``percent`` is ``100 * level / max`` only
  when both are real quantities. RFC 3805 sentinels keep their meaning: level -1 (other,
  "no restriction") is ``unlimited``, -2 is ``unknown``, -3 is ``some_remaining``; a max of
  -1 is ``unlimited`` and -2 ``unknown``; in all those cases ``percent`` is None, never a
  guess such as 50 % or 0 %.
* A level above max (both real quantities) is read as it is: ``100 * level / max``, over
  100 %, with the usual state and a warning naming the supply. Dealers' tools and the
  Printer-MIB readers we compare with do the same; a max of 0 stays ``invalid``. A PMD rule
  with ``clamp`` reads such a level as full (100 %) instead.
* Vendor scales (coded levels, stages) are the PMD's ``supplies.rules``, applied first.
* For a receptacle (waste toner box) the level is the space left (RFC 3805), so its
  percent is free space: 5 % means nearly full.
* hrPrinterDetectedErrorState bits become condition names (bit 0 = MSB of byte 0).
"""

from __future__ import annotations

import re

from fsm_protocol import vocabulary
from fsm_protocol.schema import (
    INT32_RANGE,
    SUPPLY_PERCENT_RANGE,
    SUPPLY_VALUE_RANGE,
    TICKS_RANGE,
    Alert,
    Status,
    Supply,
    SupplyState,
)

from .pmd.authoring.model import LevelRule

_WORDS = sorted((w for w in vocabulary.COLOR_WORDS if len(w) > 2), key=len, reverse=True)
_DESCR_RX = re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in _WORDS) + r")(?![a-z])")
# Words that name a colour only when they are the whole colorant value ("color" in a
# description is more often "Color LaserJet" than a tri-colour cartridge).
_VALUE_ONLY = {"color", "colour", "mono"}


def color_of(colorant: str | None, description: str | None) -> str | None:
    """The colour of a supply: the Printer-MIB colorant value if it names one, else the
    first colour word of the description (longest phrase wins: "light cyan" before "cyan")."""
    if colorant:
        c = colorant.strip().lower().replace("_", " ")
        if c in vocabulary.COLOR_WORDS:
            return vocabulary.COLOR_WORDS[c]
        m = _DESCR_RX.search(c)
        if m:
            return vocabulary.COLOR_WORDS[m.group(1)]
    if description:
        for m in _DESCR_RX.finditer(description.lower()):
            if m.group(1) not in _VALUE_ONLY:
                return vocabulary.COLOR_WORDS[m.group(1)]
    return None


def _rule_for(
    rules: list[LevelRule], kind: str, max_: int | None, description: str, unit: str | None
) -> LevelRule | None:
    for rule in rules:
        if rule.when_max and max_ not in rule.when_max:
            continue
        if rule.when_kind and kind not in rule.when_kind:
            continue
        if rule.when_unit and unit not in rule.when_unit:
            continue
        if rule.when_description is not None and not re.search(rule.when_description, description):
            continue
        return rule
    return None


def in_range(
    value: int | None, limits: tuple[int, int], what: str, warnings: list[str] | None = None
) -> int | None:
    """``value`` when it is within ``limits``, else None and a warning: a number no such field can
    hold (a hostile or broken agent) must not make the server refuse the whole report."""
    if value is None or limits[0] <= value <= limits[1]:
        return value
    if warnings is not None:
        warnings.append(f"{what}: {value} is outside {limits[0]}..{limits[1]}; ignored")
    return None


def supply_state(
    level: int | None,
    max_: int | None,
    *,
    kind: str = "other",
    description: str = "",
    unit: str | None = None,
    rules: list[LevelRule] | tuple[LevelRule, ...] = (),
    low_percent: float = 10.0,
    warnings: list[str] | None = None,
) -> tuple[float | None, SupplyState]:
    """(percent, state) of one supply from its raw level and max capacity; a level above max
    adds a line to ``warnings`` (when given) naming the supply."""
    rule = _rule_for(list(rules), kind, max_, description, unit)
    if rule is not None:
        mapped = _mapped_level(rule, level, low_percent)
        if mapped is not None:
            return mapped
        if rule.max is not None:
            max_ = rule.max
    if level is None:
        return None, "unknown"
    sentinel = _sentinel_state(level, max_)
    if sentinel is not None or max_ is None:  # (a missing max always has a sentinel state)
        return None, sentinel or "unknown"
    what = f"supply {description!r}" if description else f"{kind} supply"
    level = _capped_level(level, max_, clamp=rule is not None and rule.clamp, what=what, warnings=warnings)
    pct = round(100.0 * level / max_, 1)
    if pct > SUPPLY_PERCENT_RANGE[1]:
        if warnings is not None:
            warnings.append(f"{kind} supply {description!r}: level {level} of max {max_} is no reading")
        return None, "invalid"
    if level == 0:
        return pct, "empty"
    return pct, _state_from_percent(pct, low_percent)


def _mapped_level(
    rule: LevelRule, level: int | None, low_percent: float
) -> tuple[float | None, SupplyState] | None:
    """(percent, state) a PMD's level rule gives this raw level, None when it names no meaning."""
    meaning = rule.levels.get(str(level)) if level is not None else None
    if meaning is None:
        return None
    pct = meaning.percent
    return pct, meaning.state or ("unknown" if pct is None else _state_from_percent(pct, low_percent))


# prtMarkerSuppliesLevel values that are no amount (RFC 3805); below -3 is none of them.
_LEVEL_SENTINELS: dict[int, SupplyState] = {-3: "some_remaining", -2: "unknown", -1: "unlimited"}


def _sentinel_state(level: int, max_: int | None) -> SupplyState | None:
    """The state a level or max that is no amount (a Printer-MIB sentinel, a missing or
    non-positive max) says alone; None when level and max are a reading to divide."""
    if level < 0:
        return _LEVEL_SENTINELS.get(level, "invalid")
    if max_ is None or max_ == -2:
        return "empty" if level == 0 else "unknown"
    if max_ == -1:
        return "unlimited"
    if max_ <= 0:
        return "invalid"
    return None


def _capped_level(level: int, max_: int, *, clamp: bool, what: str, warnings: list[str] | None) -> int:
    """A level above max is noted in ``warnings``, and read as max when the rule says ``clamp``."""
    if level <= max_:
        return level
    if warnings is not None:
        warnings.append(f"{what}: level {level} above max {max_}" + ("; read as full" if clamp else ""))
    return max_ if clamp else level


def _state_from_percent(pct: float, low_percent: float) -> SupplyState:
    if pct <= 0:
        return "empty"
    return "low" if pct <= low_percent else "ok"


def supply(
    *,
    index: int | None,
    description: str,
    kind_code: int | None,
    unit_code: int | None,
    level: int | None,
    max_: int | None,
    colorant: str | None,
    rules: list[LevelRule] | tuple[LevelRule, ...] = (),
    low_percent: float = 10.0,
    warnings: list[str] | None = None,
) -> Supply:
    """One Printer-MIB prtMarkerSuppliesEntry as a schema Supply."""
    kind = vocabulary.SUPPLY_KINDS.get(kind_code, "other") if kind_code is not None else "other"
    unit = vocabulary.SUPPLY_UNITS.get(unit_code) if unit_code is not None else None
    pct, state = supply_state(
        level,
        max_,
        kind=kind,
        description=description,
        unit=unit,
        rules=rules,
        low_percent=low_percent,
        warnings=warnings,
    )
    # Raw values are kept as read, but not ones no supply can have: the server would refuse the
    # whole report for them (implausible), so one broken or hostile agent would stop its site's.
    what = f"supply {index}" if index is not None else f"{kind} supply"
    index = in_range(index, INT32_RANGE, f"{what} index", warnings)
    sane = (
        in_range(level, SUPPLY_VALUE_RANGE, f"{what} level", warnings),
        in_range(max_, SUPPLY_VALUE_RANGE, f"{what} max", warnings),
    )
    if sane != (level, max_):
        (level, max_), pct, state = sane, None, "invalid"
    return Supply(
        index=index,
        description=description,
        kind=kind,
        color=color_of(colorant, description),
        level=level,
        max=max_,
        unit=unit,
        percent=pct,
        state=state,
    )


#: Conditions that stop the device, as opposed to ones that warn ahead.
_CRITICAL = {
    "no_paper",
    "no_toner",
    "door_open",
    "jammed",
    "offline",
    "service_requested",
    "input_tray_missing",
    "output_tray_missing",
    "marker_supply_missing",
    "output_full",
}


def status(
    *, device_status: int | None, printer_status: int | None, error_state: bytes | None, console: str | None
) -> Status:
    return Status(
        device=vocabulary.DEVICE_STATUS.get(device_status) if device_status is not None else None,
        printer=vocabulary.PRINTER_STATUS.get(printer_status) if printer_status is not None else None,
        conditions=vocabulary.decode_error_state(error_state) if error_state else [],
        console=console or None,
    )


def condition_alerts(conditions: list[str]) -> list[Alert]:
    """Alerts for decoded error-state bits, for devices without a prtAlertTable."""
    return [Alert(code=c, severity="critical" if c in _CRITICAL else "warning") for c in conditions]


def alert(
    *,
    index: int | None,
    severity: int | None,
    training: int | None,
    group: int | None,
    group_index: int | None,
    location: int | None,
    code: int | None,
    description: str,
    time_ticks: int | None,
    warnings: list[str] | None = None,
) -> Alert:
    """One prtAlertTable row as a schema Alert (names from vocabulary, numbers kept where unknown)."""
    what = f"alert {index}"
    index, group_index, location = (
        in_range(v, INT32_RANGE, f"{what} {name}", warnings)
        for v, name in ((index, "index"), (group_index, "group index"), (location, "location"))
    )
    time_ticks = in_range(time_ticks, TICKS_RANGE, f"{what} time", warnings)
    return Alert(
        code=vocabulary.alert_code_name(code) if code is not None else "unknown",
        severity=vocabulary.ALERT_SEVERITIES.get(severity, "other") if severity is not None else "other",
        group=(vocabulary.ALERT_GROUPS.get(group, f"group_{group}") if group is not None else None),
        group_index=group_index if group_index is not None and group_index >= 0 else None,
        location=location if location is not None and location >= 0 else None,
        description=description,
        index=index,
        training=vocabulary.ALERT_TRAINING.get(training) if training is not None else None,
        time_ticks=time_ticks,
    )


__all__ = ["alert", "color_of", "condition_alerts", "in_range", "status", "supply", "supply_state"]

"""Compare a reading with a walk's ``expected.json`` (the format of ../shared/snmp-walks).

What ``fsm-client pmd test WALK --expected FILE`` prints. The checks are the fidelity
scorer's: vendor, serial, MAC (any interface's), the page counters, and supply percents
(``round(100 * level / max)`` when both are real quantities, null for levels -2/-3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_protocol.display import MAKER_NAMES

from ...errors import PmdError

#: expected.json counter keys (GLPI style) to canonical names.
COUNTER_KEYS = {
    "TOTAL": "total",
    "BLACK": "total_black",
    "COLOR": "total_color",
    "PRINTTOTAL": "print_total",
    "PRINTBLACK": "print_black",
    "PRINTCOLOR": "print_color",
    "COPYTOTAL": "copy_total",
    "COPYBLACK": "copy_black",
    "COPYCOLOR": "copy_color",
    "SCANNED": "scan",
    "FAXTOTAL": "fax",
    "RECTOVERSO": "duplex",
}


def _key(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


#: every other name of a maker -> the key of fsm's name for it
_VENDOR_ALIASES = {_key(n): _key(group[0]) for group in MAKER_NAMES for n in group[1:]}


@dataclass(frozen=True)
class Check:
    field: str
    ok: bool
    expected: Any
    got: Any


def _vendor(s: str | None) -> str:
    k = _key(s)
    return _VENDOR_ALIASES.get(k, k)


def load_expected(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PmdError(
            f"cannot read expectations {str(path)!r}: {exc}",
            hint="pass the expected.json that sits beside the walk",
        ) from exc
    if not isinstance(data, dict):
        raise PmdError(f"{path}: expectations must be a JSON object", hint="pass an expected.json file")
    return data


def compare(expected: dict[str, Any], reading: dict[str, Any]) -> list[Check]:
    """One Check per expected value."""
    out: list[Check] = []
    want_v, got_v = _vendor(expected.get("vendor")), _vendor(reading.get("manufacturer"))
    out.append(
        Check(
            "vendor",
            bool(want_v and got_v) and (want_v in got_v or got_v in want_v),
            expected.get("vendor"),
            reading.get("manufacturer"),
        )
    )
    if expected.get("coverage") != "full":
        return out
    if expected.get("serial"):
        got = (reading.get("serial") or "").strip()
        out.append(
            Check(
                "serial",
                got.lower() == str(expected["serial"]).strip().lower(),
                expected["serial"],
                reading.get("serial"),
            )
        )
    macs = sorted({i["mac"].lower() for i in expected.get("interfaces") or [] if i.get("mac")})
    if macs:
        got = (reading.get("mac") or "").lower()
        out.append(Check("mac", got in macs, macs, reading.get("mac")))
    counters = reading.get("counters") or {}
    for key, value in (expected.get("counters") or {}).items():
        name = COUNTER_KEYS.get(key)
        if name:
            out.append(Check(f"counters.{name}", counters.get(name) == value, value, counters.get(name)))
    supplies = {s.get("index"): s for s in reading.get("supplies") or []}
    for c in expected.get("cartridges") or []:
        s = supplies.get(c["index"])
        level, max_ = c.get("raw_level"), c.get("raw_max")
        got = s.get("percent") if s else None
        if level is not None and max_ is not None and level >= 0 and max_ > 0:
            want = round(100 * level / max_)
            ok = got is not None and abs(float(got) - want) <= 1
            out.append(Check(f"supply {c['index']}", ok, want, got))
        elif level in (-2, -3):
            out.append(
                Check(f"supply {c['index']}", s is not None and got is None, None, got if s else "missing")
            )
    return out


__all__ = ["COUNTER_KEYS", "Check", "compare", "load_expected"]

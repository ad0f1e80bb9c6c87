"""The transform registry: small, declared steps a PMD applies to a value it read.

A PMD names transforms as data, in order, on a source::

    transforms = ["text", { regex = 'SN:([^,;]+)' }, "serial"]

A bare string is a transform without argument; a one-key table is a transform with its
argument. Every transform takes a value (int, str, bytes, or a list of them for a source
with several ``oids``) and returns the new value, or ``None`` to say "no value here": the
reader then tries the field's next source. A transform never raises for a device's bad
value; it raises ``ValueError`` only when its *argument* is wrong, which the loader
reports as a PMD error naming file and key.

>>> build(["text", {"regex": "SN:([^,]+)"}, "serial"])(b"HP,SN:VNCRC48198,FN:4Q8")
'VNCRC48198'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

Value = Any  # int | str | bytes | list[...] | None
Step = Callable[[Value], Value]


@dataclass(frozen=True)
class TransformSpec:
    """One registry entry: how to build the step from its argument, and what it does."""

    name: str
    arg: str  # "none", or a short description of the argument's type
    doc: str
    make: Callable[[Any], Step]
    example: tuple[Any, Value, Value]  # (argument, input, expected output), run by the tests


REGISTRY: dict[str, TransformSpec] = {}


def _register(
    name: str, arg: str, doc: str, example: tuple[Any, Value, Value]
) -> Callable[[Callable[[Any], Step]], Callable[[Any], Step]]:
    def deco(make: Callable[[Any], Step]) -> Callable[[Any], Step]:
        REGISTRY[name] = TransformSpec(name, arg, doc, make, example)
        return make

    return deco


# -- text -------------------------------------------------------------------------------


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text sent without a byte-order mark: even length and a NUL in every other byte
    (Latin script), so the NULs tell the byte order."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    codec = (
        "utf-16-be"
        if even.count(0) >= len(even) * 0.8 and odd.count(0) <= len(odd) * 0.2
        else "utf-16-le"
        if odd.count(0) >= len(odd) * 0.8 and even.count(0) <= len(even) * 0.2
        else None
    )
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _legacy(data: bytes) -> str:
    """Bytes that are not UTF-8: Shift-JIS when they read as Shift-JIS and use its lead bytes
    0x81-0x9F (C1 controls in Latin-1; Japanese models' supply names), else Windows-1252
    (Latin-1 with quotes, "€" and "™" where Latin-1 has controls), else Latin-1, which
    never fails."""
    if any(0x81 <= b <= 0x9F for b in data):
        try:
            return data.decode("shift_jis")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def to_text(value: Value) -> str | None:
    """Bytes to text the way printers write it: UTF-16 with a BOM, UTF-16 without one (NUL
    every other byte), UTF-8, else Shift-JIS, Windows-1252 or Latin-1 (see ``_legacy``). A C string ends
    at its first NUL (what follows in a fixed-size buffer is junk); blanks are trimmed."""
    if value is None:
        return None
    if isinstance(value, list):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value
    elif value[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = value.decode("utf-16", "replace")
    else:
        text16 = _utf16_without_bom(value)
        if text16 is not None:
            text = text16
        else:
            data = _c_string(value, b"\x00")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = _legacy(data)
    text = _c_string(text, "\x00").strip()
    return text or None


_StrOrBytes = TypeVar("_StrOrBytes", str, bytes)


def _c_string(data: _StrOrBytes, nul: _StrOrBytes) -> _StrOrBytes:
    """The text before the first NUL when there is text before it (a C string in a fixed
    buffer: the rest is junk); else every NUL removed (a binary prefix such as HP PML's
    two-byte symbol set may hold one)."""
    head = data.lstrip(nul).split(nul, 1)[0]
    if any(c.isalnum() for c in (head if isinstance(head, str) else head.decode("latin-1"))):
        return head
    return data.replace(nul, nul[:0])


def to_int(value: Value) -> int | None:
    """An integer from an int, or from text holding one (some agents send counters as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = to_text(value) if isinstance(value, bytes | str) else None
    if text is None:
        return None
    text = text.replace(",", "").replace(" ", "")
    return int(text) if re.fullmatch(r"-?\d{1,20}", text) else None


@_register(
    "text",
    "none",
    "decode bytes to text (UTF-16 with or without BOM, UTF-8, Shift-JIS, Latin-1), "
    "end at the first NUL, trim",
    (None, b"  HP LaserJet\x00 ", "HP LaserJet"),
)
def _text(_: Any) -> Step:
    return to_text


@_register(
    "printable",
    "none",
    "keep printable characters only, collapse runs of blanks, trim",
    (None, "Brother\tHL\x01-5370", "Brother HL-5370"),
)
def _printable(_: Any) -> Step:
    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        t = "".join(c if c.isprintable() else ("" if c not in "\t\r\n" else " ") for c in t)
        t = re.sub(r"\s+", " ", t).strip()
        return t or None

    return step


@_register(
    "utf16",
    "none",
    "decode bytes as UTF-16 (big-endian unless a BOM says otherwise)",
    (None, b"\x00H\x00P", "HP"),
)
def _utf16(_: Any) -> Step:
    def step(v: Value) -> Value:
        if not isinstance(v, bytes) or len(v) % 2:
            return to_text(v)
        if v[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return to_text(v.decode("utf-16", "replace"))
        return to_text(v.decode("utf-16-be", "replace"))

    return step


@_register(
    "hex_string",
    "none",
    "decode text written as hex digits ('48 50 20 4C', '4850204C' or '48:50') into text",
    (None, "48 50 20 4C 4A", "HP LJ"),
)
def _hex_string(_: Any) -> Step:
    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        digits = re.sub(r"[\s:.-]", "", t)
        if not digits or len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
            return t  # already plain text
        return to_text(bytes.fromhex(digits))

    return step


#: Hex pairs separated by blanks or colons ("42 6C 61 63 6B"): how some firmware sends a
#: string it thinks is binary. Unseparated hex is left alone: "ABCD1234" is a plausible serial.
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?:[ :]+[0-9A-Fa-f]{2}){2,}")


def unhex(text: str) -> str:
    """``text`` decoded when it is separated hex pairs that decode to printable text with a
    letter or digit in it; else ``text`` unchanged."""
    if not _HEX_PAIRS.fullmatch(text.strip()):
        return text
    decoded = to_text(bytes.fromhex(re.sub(r"[ :]", "", text)))
    if decoded and all(c.isprintable() for c in decoded) and any(c.isalnum() for c in decoded):
        return decoded
    return text


@_register(
    "hex_text",
    "none",
    "text some agents send as separated hex pairs ('42 6C 61 63 6B') decoded, when it decodes to "
    "readable text; anything else unchanged (safe on plain descriptions)",
    (None, "42 6C 61 63 6B 20 54 6F 6E 65 72", "Black Toner"),
)
def _hex_text(_: Any) -> Step:
    def step(v: Value) -> Value:
        t = to_text(v)
        return None if t is None else unhex(t)

    return step


@_register(
    "skip_bytes",
    "int: how many leading bytes to drop",
    "drop a fixed binary prefix (HP PML strings start with a 2-byte symbol-set header)",
    (2, b"\x01\x15VNCRC48198", b"VNCRC48198"),
)
def _skip_bytes(n: Any) -> Step:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"skip_bytes wants a non-negative integer, got {n!r}")

    def step(v: Value) -> Value:
        if isinstance(v, bytes):
            return v[n:] or None
        return v

    return step


@_register(
    "regex",
    "str: a regular expression with at most one group",
    "search the text; the value is group 1 (or the whole match); no match means no value",
    (r"SN:([^,]+)", "X,SN:ABC123,FN:1", "ABC123"),
)
def _regex(pattern: Any) -> Step:
    if not isinstance(pattern, str):
        raise ValueError(f"regex wants a string, got {pattern!r}")
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    if rx.groups > 1:
        raise ValueError(f"regex {pattern!r} has {rx.groups} groups; use at most one")

    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        m = rx.search(t)
        if not m:
            return None
        out = (m.group(1) if rx.groups else m.group(0)) or ""
        return out.strip() or None

    return step


@_register(
    "ieee1284",
    "str: the key (MDL, MFG, CMD, DES, SN, ...)",
    "take one key from an IEEE 1284 device ID ('MFG:HP;MDL:LaserJet M130nw;...')",
    ("MDL", "MFG:HP;CMD:PJL;MDL:HP LaserJet MFP M130nw;CLS:PRINTER;", "HP LaserJet MFP M130nw"),
)
def _ieee1284(key: Any) -> Step:
    if not isinstance(key, str) or not key:
        raise ValueError(f"ieee1284 wants a key name such as 'MDL', got {key!r}")
    wanted = {key.upper()}
    # IEEE 1284 allows long names for the common keys.
    wanted |= {"MDL": {"MODEL"}, "MFG": {"MANUFACTURER"}, "CMD": {"COMMAND SET"}}.get(key.upper(), set())

    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        for part in t.split(";"):
            k, sep, val = part.partition(":")
            if sep and k.strip().upper() in wanted:
                return val.strip() or None
        return None

    return step


@_register(
    "map",
    "table: raw value (as text) -> new value",
    "replace a value by the table's entry; a value not in the table means no value",
    ({"1": "ok", "2": "low"}, 2, "low"),
)
def _map(table: Any) -> Step:
    if not isinstance(table, dict) or not table:
        raise ValueError(f"map wants a non-empty table, got {table!r}")
    keys = {str(k).lower(): val for k, val in table.items()}

    def step(v: Value) -> Value:
        k = to_text(v) if not isinstance(v, int) else str(v)
        if k is None:
            return None
        return keys.get(k.lower())

    return step


@_register(
    "replace",
    "table: old text -> new text",
    "replace substrings, in table order",
    ({"Hewlett-Packard": "HP"}, "Hewlett-Packard LaserJet", "HP LaserJet"),
)
def _replace(table: Any) -> Step:
    if not isinstance(table, dict) or not all(isinstance(x, str) for x in table.values()):
        raise ValueError(f"replace wants a table of strings, got {table!r}")

    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        for old, new in table.items():
            t = t.replace(old, new)
        return t.strip() or None

    return step


@_register(
    "prefix",
    "str",
    "put a fixed text before the value (e.g. a brand before a bare model)",
    ("Canon ", "LBP6670", "Canon LBP6670"),
)
def _prefix(text: Any) -> Step:
    if not isinstance(text, str):
        raise ValueError(f"prefix wants a string, got {text!r}")

    def step(v: Value) -> Value:
        t = to_text(v)
        if t is None:
            return None
        return t if t.lower().startswith(text.strip().lower()) else text + t

    return step


@_register("upper", "none", "upper-case the text", (None, "aa2m", "AA2M"))
def _upper(_: Any) -> Step:
    return lambda v: t.upper() if (t := to_text(v)) else None


# -- numbers ----------------------------------------------------------------------------


@_register(
    "int",
    "none",
    "parse an integer from text ('12,345' included); anything else is no value",
    (None, b"12,345", 12345),
)
def _int(_: Any) -> Step:
    return to_int


@_register("scale", "number: factor", "multiply a number (result rounded to an integer)", (0.5, 10, 5))
def _scale(factor: Any) -> Step:
    if not isinstance(factor, int | float) or isinstance(factor, bool):
        raise ValueError(f"scale wants a number, got {factor!r}")

    def step(v: Value) -> Value:
        n = to_int(v)
        return None if n is None else round(n * factor)

    return step


@_register("offset", "int", "add a constant to a number", (-1, 10, 9))
def _offset(delta: Any) -> Step:
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise ValueError(f"offset wants an integer, got {delta!r}")

    def step(v: Value) -> Value:
        n = to_int(v)
        return None if n is None else n + delta

    return step


@_register(
    "sum",
    "none",
    "add up the values of a source with several `oids` (all must be present)",
    (None, [3, 4, 5], 12),
)
def _sum(_: Any) -> Step:
    def step(v: Value) -> Value:
        items = v if isinstance(v, list) else [v]
        nums = [to_int(x) for x in items]
        if not nums or any(n is None for n in nums):
            return None
        return sum(n for n in nums if n is not None)

    return step


@_register(
    "difference", "none", "first value minus the others, for a source with several `oids`", (None, [10, 3], 7)
)
def _difference(_: Any) -> Step:
    def step(v: Value) -> Value:
        nums = [to_int(x) for x in (v if isinstance(v, list) else [v])]
        if not nums or any(n is None for n in nums):
            return None
        first, *rest = nums
        assert first is not None
        return first - sum(n for n in rest if n is not None)

    return step


@_register(
    "non_negative", "none", "drop negative numbers (agents send -1/-2 for 'not supported')", (None, -2, None)
)
def _non_negative(_: Any) -> Step:
    return lambda v: n if (n := to_int(v)) is not None and n >= 0 else None


@_register(
    "positive",
    "none",
    "drop zero and negative numbers (a counter of 0 that means 'not counted')",
    (None, 0, None),
)
def _positive(_: Any) -> Step:
    return lambda v: n if (n := to_int(v)) is not None and n > 0 else None


_RECORD_KEYS = {"size", "key", "key_offset", "value_offset", "value_length"}


@_register(
    "record",
    "table: size, key, value_offset, value_length (key_offset 0)",
    "pick one fixed-size record from a binary block by its key byte; the value is a big-endian "
    "unsigned integer (Brother's counter and maintenance blocks: 7-byte records key, 01, 04, value)",
    (
        {"size": 7, "key": 0x01, "value_offset": 3, "value_length": 4},
        bytes.fromhex("00010400001e780101040000147eff"),
        0x147E,
    ),
)
def _record(spec: Any) -> Step:
    if (
        not isinstance(spec, dict)
        or not {"size", "key", "value_offset", "value_length"} <= set(spec)
        or set(spec) - _RECORD_KEYS
        or not all(isinstance(v, int) and v >= 0 for v in spec.values())
    ):
        raise ValueError(
            f"record wants {{size, key, value_offset, value_length[, key_offset]}} as "
            f"non-negative integers, got {spec!r}"
        )
    size, key, k_off = spec["size"], spec["key"], spec.get("key_offset", 0)
    v_off, v_len = spec["value_offset"], spec["value_length"]
    if not (0 < v_len <= 8 and v_off + v_len <= size and k_off < size):
        raise ValueError(f"record fields fall outside a {size}-byte record: {spec!r}")

    def step(v: Value) -> Value:
        if not isinstance(v, bytes):
            return None
        for start in range(0, len(v) - size + 1, size):
            rec = v[start : start + size]
            if rec[k_off] == key:
                return int.from_bytes(rec[v_off : v_off + v_len], "big")
        return None

    return step


# -- identity ---------------------------------------------------------------------------

_MAC_TEXT = re.compile(
    r"^([0-9A-Fa-f]{2})[:\-. ]?([0-9A-Fa-f]{2})[:\-. ]?([0-9A-Fa-f]{2})[:\-. ]?"
    r"([0-9A-Fa-f]{2})[:\-. ]?([0-9A-Fa-f]{2})[:\-. ]?([0-9A-Fa-f]{2})$"
)


def format_mac(value: Value) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from 6 raw bytes or from MAC text in the usual spellings;
    all-zero and broadcast addresses are no value."""
    raw: bytes | None = None
    if isinstance(value, bytes) and len(value) == 6:
        raw = value
    else:
        t = to_text(value)
        m = _MAC_TEXT.match(t.replace("0x", "")) if t else None
        if m:
            raw = bytes(int(g, 16) for g in m.groups())
    if raw is None or raw in (b"\x00" * 6, b"\xff" * 6):
        return None
    return ":".join(f"{b:02x}" for b in raw)


@_register(
    "mac",
    "none",
    "format a MAC as aa:bb:cc:dd:ee:ff (from 6 bytes or text); zero is no value",
    (None, b"\x14\xcb\x19\x95\x2e\xa0", "14:cb:19:95:2e:a0"),
)
def _mac(_: Any) -> Step:
    return format_mac


#: Serials devices send when they do not know theirs: words, masks of X, punctuation.
_PLACEHOLDER_SERIALS = re.compile(
    r"^(?:n/?a|none|null|nil|unknown|not ?available|not ?set|default|serial(?: ?number)?|s/?n|sn|"
    r"to be filled by o\.?e\.?m\.?|x+|[?*.#_ -]+)$",
    re.IGNORECASE,
)


def normalize_serial(value: Value) -> str | None:
    """Trim a serial and drop the placeholders devices send instead of one.

    Conservative on purpose: a dropped serial is an unidentified device, a kept odd one is
    only odd. Dropped: empty, words ("unknown", "N/A", "Serial Number" ...), masks of X, pure
    punctuation, and one repeated character shorter than 6 ("0", "000", "11111"). Kept:
    anything of 6 or more characters that is not one of those, "0000000000" included (an
    anonymised or factory-reset serial is still what the device reports and what other
    readers show), and "123456789"."""
    t = to_text(value)
    if t is None:
        return None
    t = unhex(t)  # some firmware (Brother, some Samsung) sends the serial as hex pairs
    t = "".join(c for c in t if c.isprintable()).strip().strip(";,").strip()
    if not t or _PLACEHOLDER_SERIALS.match(t) or len(t) > 64:
        return None
    if len(set(t)) == 1 and len(t) < 6:
        return None
    return t


@_register(
    "serial",
    "none",
    "trim a serial number and drop placeholders ('XXXXXXXX', 'unknown', 'N/A', '0', '000', ...)",
    (None, b"XXXXXXXXXX", None),
)
def _serial(_: Any) -> Step:
    return normalize_serial


# -- building ---------------------------------------------------------------------------


def parse_entry(entry: Any) -> tuple[str, Any]:
    """``"name"`` or ``{name = arg}`` to (name, arg); ValueError for anything else."""
    if isinstance(entry, str):
        name, arg = entry, None
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, arg),) = entry.items()
    else:
        raise ValueError(f"a transform is a name or a one-key table {{name = argument}}, got {entry!r}")
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(REGISTRY))}")
    if spec.arg == "none" and arg is not None:
        raise ValueError(f"transform {name!r} takes no argument, got {arg!r}")
    if spec.arg != "none" and arg is None:
        raise ValueError(f"transform {name!r} needs an argument ({spec.arg})")
    return name, arg


def build(entries: list[Any]) -> Step:
    """Compose the declared transforms into one step; ValueError names the bad entry."""
    steps = [REGISTRY[name].make(arg) for name, arg in (parse_entry(e) for e in entries)]

    def run(value: Value) -> Value:
        for s in steps:
            if value is None:
                return None
            value = s(value)
        return value

    return run


__all__ = [
    "REGISTRY",
    "Step",
    "TransformSpec",
    "build",
    "format_mac",
    "normalize_serial",
    "parse_entry",
    "to_int",
    "to_text",
    "unhex",
]

"""The small interface the reader uses to ask a device for values, and the recording source.

Everything that runs a PMD talks to an ``SnmpSource``: ``PysnmpSource`` (in ``session.py``)
for live devices, ``RecordingSource`` for ``.snmprec`` recordings in unit tests. Values
come back as ``SnmpValue``, which keeps the SNMP type beside the Python value, so the
reader can tell a Counter32 from an Integer32 or an OCTET STRING that is really a MAC.

>>> src = RecordingSource.from_text("1.3.6.1.2.1.1.5.0|4|printer-1\\n")
>>> import asyncio
>>> asyncio.run(src.get(["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0"]))
{'1.3.6.1.2.1.1.5.0': SnmpValue(tag='octets', value=b'printer-1')}
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import msgspec

Tag = Literal[
    "integer",
    "octets",
    "null",
    "oid",
    "ipaddress",
    "counter32",
    "gauge32",
    "timeticks",
    "opaque",
    "counter64",
]

#: snmprec tag numbers (BER type numbers) to our tag names.
SNMPREC_TAGS: dict[str, Tag] = {
    "2": "integer",
    "4": "octets",
    "5": "null",
    "6": "oid",
    "64": "ipaddress",
    "65": "counter32",
    "66": "gauge32",
    "67": "timeticks",
    "68": "opaque",
    "70": "counter64",
}


class SnmpValue(msgspec.Struct, frozen=True):
    """One varbind value: ``value`` is int for numeric tags, bytes for octets/opaque,
    a dotted string for oid and ipaddress, None for null."""

    tag: Tag
    value: int | bytes | str | None

    def as_int(self) -> int | None:
        return self.value if isinstance(self.value, int) and not isinstance(self.value, bool) else None

    def as_bytes(self) -> bytes | None:
        if isinstance(self.value, bytes):
            return self.value
        if isinstance(self.value, str):
            return self.value.encode()
        return None


@runtime_checkable
class SnmpSource(Protocol):
    """Where the reader gets values from. Implementations never raise for a missing OID:
    it is simply absent from the answer (noSuchObject / noSuchInstance / endOfMibView)."""

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """Values of the given instance OIDs (dotted, no leading dot) that exist."""
        ...

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        """Every (oid, value) under ``oid`` in walk order, at most ``max_rows``."""
        ...


def oid_key(oid: str) -> tuple[int, ...]:
    """Sort key of a dotted OID (numeric, so 1.10 sorts after 1.9)."""
    return tuple(int(p) for p in oid.strip(".").split(".") if p)


def parse_snmprec_value(tag: str, raw: str) -> SnmpValue:
    """Decode one snmprec value field (``4x`` and ``64x`` are hex)."""
    hexed = tag.endswith("x")
    base = tag[:-1] if hexed else tag
    name = SNMPREC_TAGS.get(base)
    if name is None:
        raise ValueError(f"unknown snmprec tag {tag!r}")
    if name in ("octets", "opaque"):
        return SnmpValue(name, bytes.fromhex(raw) if hexed else raw.encode("utf-8", "surrogateescape"))
    if name == "ipaddress":
        if hexed:
            return SnmpValue(name, ".".join(str(b) for b in bytes.fromhex(raw)))
        return SnmpValue(name, raw)
    if name == "oid":
        return SnmpValue(name, raw.strip("."))
    if name == "null":
        return SnmpValue(name, None)
    return SnmpValue(name, int(raw))


class RecordingSource:
    """An ``SnmpSource`` answering from an in-memory recording (``.snmprec`` format)."""

    def __init__(self, values: dict[str, SnmpValue]) -> None:
        self._values = {oid.strip("."): v for oid, v in values.items()}
        self._keys = sorted(self._values, key=oid_key)
        self._sort = [oid_key(k) for k in self._keys]

    @classmethod
    def from_text(cls, text: str) -> RecordingSource:
        values: dict[str, SnmpValue] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            oid, tag, raw = line.split("|", 2)
            values[oid] = parse_snmprec_value(tag, raw)
        return cls(values)

    @classmethod
    def from_file(cls, path: str | Path) -> RecordingSource:
        return cls.from_text(Path(path).read_text(encoding="utf-8", errors="surrogateescape"))

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        out: dict[str, SnmpValue] = {}
        for oid in oids:
            v = self._values.get(oid.strip("."))
            if v is not None:
                out[oid.strip(".")] = v
        return out

    async def walk_many(
        self, roots: Mapping[str, int] | Sequence[str], *, max_rows: int = 10_000
    ) -> dict[str, list[tuple[str, SnmpValue]]]:
        limits = dict(roots) if isinstance(roots, Mapping) else dict.fromkeys(roots, max_rows)
        return {root: await self.walk(root, max_rows=limit) for root, limit in limits.items()}

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        prefix = oid_key(oid)
        start = bisect.bisect_right(self._sort, prefix)
        rows: list[tuple[str, SnmpValue]] = []
        for i in range(start, len(self._keys)):
            if self._sort[i][: len(prefix)] != prefix or len(rows) >= max_rows:
                break
            rows.append((self._keys[i], self._values[self._keys[i]]))
        return rows


async def walk_many(
    source: SnmpSource, roots: Mapping[str, int] | Sequence[str], *, max_rows: int = 10_000
) -> dict[str, list[tuple[str, SnmpValue]]]:
    """``{root: rows}`` for several subtrees: the source's own ``walk_many`` where it has one
    (``PysnmpSource`` walks up to 16 tables per GETBULK), else one ``walk`` after another.
    ``roots`` maps roots to their row limits, or lists roots sharing ``max_rows``."""
    many = getattr(source, "walk_many", None)
    if many is not None:
        return await many(roots, max_rows=max_rows)  # type: ignore[no-any-return]
    limits = dict(roots) if isinstance(roots, Mapping) else dict.fromkeys(roots, max_rows)
    return {root: await source.walk(root, max_rows=limit) for root, limit in limits.items()}


__all__ = [
    "SNMPREC_TAGS",
    "RecordingSource",
    "SnmpSource",
    "SnmpValue",
    "Tag",
    "oid_key",
    "parse_snmprec_value",
    "walk_many",
]

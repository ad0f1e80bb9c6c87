"""Choose the PMD for a device from its sysObjectID and sysDescr.

Among the PMDs with a rule that matches, the winner has the highest ``match.priority``;
then one whose sysDescr pattern matched (a sysDescr naming the vendor beats a borrowed
sysObjectID, as on an HP JetDirect EX box that answers with a Kyocera OID); then the
longest matching sysObjectID prefix; then the id, so the choice is deterministic. With no
match, the base ``printer-mib`` PMD reads the device by the standard MIBs alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from ...errors import UnknownPmd
from .model import Pmd

BASE_ID = "printer-mib"
#: (priority, sysDescr matched, sysObjectID prefix length): higher is better.
Score = tuple[int, int, int]


@lru_cache(maxsize=512)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _oid_prefix_len(prefix: str, oid: str) -> int:
    """Number of arcs of ``prefix`` when it is a prefix of ``oid`` at a dot boundary, else -1."""
    prefix = prefix.strip(".")
    oid = oid.strip(".")
    if oid == prefix or oid.startswith(prefix + "."):
        return prefix.count(".") + 1
    return -1


class PmdPool:
    """The loaded PMDs by id. ``match()`` picks one for a device."""

    def __init__(self, pmds: dict[str, Pmd], *, files: dict[str, Path] | None = None) -> None:
        self.pmds = dict(sorted(pmds.items()))
        self.files = files or {}

    def __iter__(self) -> Iterator[Pmd]:
        return iter(self.pmds.values())

    def __len__(self) -> int:
        return len(self.pmds)

    def get(self, pmd_id: str) -> Pmd:
        try:
            return self.pmds[pmd_id]
        except KeyError:
            raise UnknownPmd(
                f"no PMD {pmd_id!r} in the pool", hint="`fsm-client pmd list` shows the ids there are"
            ) from None

    def score(self, pmd: Pmd, sys_object_id: str | None, sys_descr: str | None) -> Score | None:
        """(priority, sysDescr matched, OID prefix length) when ``pmd`` matches, else None."""
        oid_len = max(
            (_oid_prefix_len(p, sys_object_id) for p in pmd.match.sys_object_id if sys_object_id), default=-1
        )
        descr = bool(sys_descr) and any(_rx(p).search(sys_descr or "") for p in pmd.match.sys_descr)
        if oid_len < 0 and not descr:
            return None
        return (pmd.match.priority, int(descr), oid_len)

    def candidates(self, sys_object_id: str | None, sys_descr: str | None) -> list[tuple[Score, Pmd]]:
        """Every matching PMD with its score, best first."""
        found = [(s, p) for p in self.pmds.values() if (s := self.score(p, sys_object_id, sys_descr))]
        found.sort(key=lambda sp: (-sp[0][0], -sp[0][1], -sp[0][2], sp[1].id))
        return found

    def match(self, sys_object_id: str | None, sys_descr: str | None) -> Pmd:
        best = self.candidates(sys_object_id, sys_descr)
        return best[0][1] if best else self.get(BASE_ID)


__all__ = ["BASE_ID", "PmdPool", "Score"]

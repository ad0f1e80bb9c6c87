"""Which PMD a device or a recorded walk gets, and which others were candidates: what
``fsm-client pmd match`` shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from fsm_common.configfile import Secret

from ...config import ClientConfig, Credential
from ...errors import PmdError, SnmpError
from ...reader import SYS_DESCR, SYS_OBJECT_ID, identify
from ...snmp.addresses import parse_target
from ...snmp.source import SnmpValue
from .matcher import PmdPool
from .walktest import load_recording


class Candidate(msgspec.Struct, frozen=True):
    """A PMD that matches, with its score (higher wins, in this order)."""

    id: str
    priority: int
    sys_descr_matched: bool
    oid_prefix_arcs: int


class MatchResult(msgspec.Struct, frozen=True):
    sys_object_id: int | bytes | str | None
    sys_descr: int | str | None
    pmd: str
    chain: list[str]  # the PMD, then what it extends
    candidates: list[Candidate]


async def system_of(target: str, config: ClientConfig, community: str | None = None) -> dict[str, SnmpValue]:
    """The system group of ``target``: a ``.snmprec`` file, or a host[:port] asked with
    ``community`` (else each configured credential in turn)."""
    if target.endswith(".snmprec") or Path(target).is_file():
        return dict(await identify(load_recording(target)))
    from ...snmp.session import PysnmpSource  # pysnmp loads slowly: only when asking a device

    t = parse_target(target, default_port=config.snmp.port)
    creds = [Credential(name="--community", community=Secret(community))] if community else config.credentials
    last: Exception | None = None
    for cred in creds:
        async with PysnmpSource(
            t.host, cred, port=t.port, timeout=config.snmp.timeout, retries=config.snmp.retries
        ) as src:
            try:
                return dict(await identify(src))
            except SnmpError as exc:  # try the next credential, report the last
                last = exc
    raise PmdError(f"{target} did not answer: {last}", hint="check the address and --community")


def explain_match(pool: PmdPool, system: dict[str, SnmpValue]) -> MatchResult:
    """The PMD ``pool`` gives a device of this system group, and every candidate with its score."""
    oid_v, descr_v = system.get(SYS_OBJECT_ID), system.get(SYS_DESCR)
    sys_oid = oid_v.value if oid_v is not None else None
    raw_descr = descr_v.value if descr_v is not None else None
    descr = raw_descr.decode("utf-8", "replace") if isinstance(raw_descr, bytes) else raw_descr
    oid_s = sys_oid if isinstance(sys_oid, str) else None
    descr_s = descr if isinstance(descr, str) else None
    chosen = pool.match(oid_s, descr_s)
    return MatchResult(
        sys_object_id=sys_oid,
        sys_descr=descr,
        pmd=chosen.id,
        chain=list(chosen.chain),
        candidates=[Candidate(p.id, s[0], bool(s[1]), s[2]) for s, p in pool.candidates(oid_s, descr_s)],
    )


def match_target(
    target: str, pool: PmdPool, config: ClientConfig, community: str | None = None
) -> MatchResult:
    """``explain_match`` for ``target`` (see ``system_of``)."""
    return explain_match(pool, asyncio.run(system_of(target, config, community)))


__all__ = ["Candidate", "MatchResult", "explain_match", "match_target", "system_of"]

"""Read a recorded walk the way a scan reads a device: served by snmpsim, or read directly.

What ``fsm-client pmd test WALK`` runs. Serving the recording exercises the whole path a
real device takes (SNMP encoding, GETBULK paging, the session's retries and types); reading
it directly (``RecordingSource``) needs nothing installed and is what unit tests use.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fsm_common.configfile import Secret
from fsm_protocol.schema import Device

from ...config import Credential
from ...errors import PmdError, SnmpsimError
from ...reader import read_device, read_with_pmd
from ...snmp.snmpsim import DEFAULT_VENV, Snmpsim
from ...snmp.source import RecordingSource, SnmpSource
from .matcher import PmdPool

ReadVia = Literal["snmpsim", "recording"]


@dataclass(frozen=True)
class WalkReading:
    device: Device
    via: ReadVia
    note: str = ""  # why the recording was read directly when serving was asked for


def snmpsim_venv() -> Path | None:
    """The snmpsim installation to serve walks with (FSM_SNMPSIM_VENV, else /opt/fsm-snmpsim)."""
    venv = Path(os.environ.get("FSM_SNMPSIM_VENV") or DEFAULT_VENV)
    return venv if (venv / "bin" / "snmpsim-command-responder").exists() else None


def load_recording(walk: Path | str) -> RecordingSource:
    """The recording at ``walk``, or a PmdError naming the file and what is wrong with it."""
    try:
        return RecordingSource.from_file(walk)
    except (OSError, ValueError) as exc:  # ValueError: a line that is not OID|TAG|VALUE
        raise PmdError(
            f"cannot read the recording {str(walk)!r}: {exc}",
            hint="a .snmprec file has one OID|TAG|VALUE line per value (snmpsim-record-commands writes it)",
        ) from exc


async def _read(source: SnmpSource, pool: PmdPool, pmd_id: str | None, ip: str) -> Device:
    if pmd_id is None:
        return await read_device(source, pool, ip=ip)
    return await read_with_pmd(source, pool.get(pmd_id), ip=ip)


def read_walk(
    walk: Path | str,
    pool: PmdPool,
    *,
    pmd_id: str | None = None,
    serve: bool = True,
    timeout: float = 2.0,
    retries: int = 1,
) -> WalkReading:
    """Read the ``.snmprec`` recording ``walk``: served by a private snmpsim on a loopback port
    when ``serve`` and snmpsim is installed, else from the file."""
    walk = Path(walk)
    if not serve:
        return WalkReading(asyncio.run(_read(load_recording(walk), pool, pmd_id, str(walk))), "recording")
    venv = snmpsim_venv()
    if venv is None:
        device = asyncio.run(_read(load_recording(walk), pool, pmd_id, str(walk)))
        return WalkReading(
            device,
            "recording",
            "snmpsim is not installed (set FSM_SNMPSIM_VENV or run "
            "scripts/setup): read the recording directly",
        )
    from ...snmp.session import PysnmpSource  # pysnmp loads slowly: only when serving

    # one small file is indexed in about a second; a recording snmpsim cannot parse fails at once
    sim = Snmpsim(recordings=[walk], venv=str(venv), ready_timeout=30.0)
    try:
        sim.start()
    except SnmpsimError as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1:] or [str(exc)]
        raise PmdError(
            f"snmpsim could not serve {str(walk)!r}: {last[0].strip()[:300]}",
            hint="check the recording's format (OID|TAG|VALUE lines), or pass --direct",
        ) from exc
    try:
        cred = Credential(name="snmpsim", community=Secret(sim.community(walk.stem)))

        async def served() -> Device:
            async with PysnmpSource(
                "127.0.0.1", cred, port=sim.port, timeout=timeout, retries=retries
            ) as src:
                return await _read(src, pool, pmd_id, str(walk))

        return WalkReading(asyncio.run(served()), "snmpsim")
    finally:
        sim.stop()


__all__ = ["ReadVia", "WalkReading", "load_recording", "read_walk", "snmpsim_venv"]

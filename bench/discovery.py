"""Sweep 65,534 silent addresses (127.1.0.0/16) and compare with pysnmp per address.

Every address in 127.0.0.0/8 is local and nothing listens on the chosen port, so each
probe gets an ICMP port-unreachable that an unconnected UDP socket never sees: to a
sweep these are silent addresses. Goal: the /16 done in <= 10 s with a 1 s timeout and
1 retry. Beside it, in the same run, the pysnmp high-level API (one ``get_cmd`` per
address, one shared engine, all in flight at once) on a sample of ``--sample``
addresses, and the /16 time that rate implies.

usage: .venv/bin/python bench/discovery.py [--cidr 127.1.0.0/16] [--sample 500] [--rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsm_client.snmp.discovery import SweepProgress, expand_targets, sweep
from fsm_client.snmp.snmpsim import free_udp_port
from fsm_devtools.fixtures.snmp import community_credential

GOAL_SECONDS = 10.0


async def fsm_sweep(
    cidr: str, port: int, timeout: float, retries: int, rate: float
) -> tuple[float, float, int]:
    ticks: list[SweepProgress] = []
    c0, t0 = time.process_time(), time.perf_counter()
    found = await sweep(
        [cidr],
        credentials=[community_credential("public")],
        port=port,
        timeout=timeout,
        retries=retries,
        rate=rate,
        progress=ticks.append,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not found, found
    assert ticks and ticks[-1].done == ticks[-1].total
    return wall, cpu, ticks[-1].total


async def pysnmp_sample(addresses: list[str], port: int, timeout: float, retries: int) -> tuple[float, float]:
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    engine = SnmpEngine()
    auth = CommunityData("public", mpModel=1)
    varbinds = [ObjectType(ObjectIdentity(o)) for o in ("1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.1.0")]

    async def one(ip: str) -> None:
        target = await UdpTransportTarget.create((ip, port), timeout=timeout, retries=retries)
        indication, *_ = await get_cmd(engine, auth, target, ContextData(), *varbinds, lookupMib=False)
        assert indication, f"{ip} answered"

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(ip) for ip in addresses))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.close_dispatcher()
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cidr", default="127.1.0.0/16")
    ap.add_argument("--sample", type=int, default=500, help="addresses for the pysnmp comparison")
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0, help="probes/s cap for fsm (0 = as fast as it sends)")
    a = ap.parse_args()
    if not a.cidr.startswith("127."):
        ap.error("this bench only sweeps loopback (127.0.0.0/8)")
    port = free_udp_port()

    wall, cpu, n = asyncio.run(fsm_sweep(a.cidr, port, a.timeout, a.retries, a.rate))
    sample = list(expand_targets([a.cidr], ()))[: a.sample]
    p_wall, p_cpu = asyncio.run(pysnmp_sample(sample, port, a.timeout, a.retries))

    fsm_rate = n / wall
    p_rate = len(sample) / p_wall
    # a sweep cannot go faster than its CPU allows, nor finish before timeout x attempts
    p_full = max(n * p_cpu / len(sample), n / p_rate)
    print(f"silent addresses: {n} ({a.cidr}), UDP port {port}, timeout {a.timeout:g} s, retries {a.retries}")
    print(f"{'':34} {'addresses/s':>12} {'CPU/address':>12} {'time for all':>13}")
    print(f"{'fsm sweep (raw UDP, one socket)':34} {fsm_rate:12.0f} {cpu / n * 1e6:9.1f} us {wall:11.2f} s")
    print(
        f"{'pysnmp get_cmd per address':34} {p_rate:12.0f} {p_cpu / len(sample) * 1e6:9.1f} us "
        f"{p_full:11.2f} s  (sample of {len(sample)}: {p_wall:.2f} s; all estimated)"
    )
    print(
        f"ratio: fsm {fsm_rate / p_rate:.0f}x the addresses/s of pysnmp, "
        f"{(p_cpu / len(sample)) / (cpu / n):.0f}x less CPU per address"
    )
    ok = wall <= GOAL_SECONDS
    print(f"goal ({a.cidr} in <= {GOAL_SECONDS:g} s): {'MET' if ok else 'NOT MET'} ({wall:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

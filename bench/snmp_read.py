"""Read 200 simulated printers in full and compare with Net-SNMP and snmpsim's ceiling.

snmpsim serves copies of ``shared/snmp-walks`` on 127.0.0.2 .. 127.0.0.201 (one address
per device, device i serving walk i mod 33). All in one run:

1. **fsm reader**: ``fsm_client.reader.read_device`` over ``PysnmpSource`` for every
   device, ``--concurrency`` devices at once, one shared pysnmp engine. The GET OIDs and
   walk roots each device needed are recorded for step 3.
2. **fsm session, fixed set**: a PMD-like fixed read per device (one 30-OID GET, GETBULK
   walks of the Printer-MIB supplies, marker and hrDevice tables), once with one walk per
   table and once with ``walk_many`` (the three tables side by side in each GETBULK).
3. **Net-SNMP, same work as 1**: per device one ``snmpget`` of the same OIDs and one
   ``snmpbulkwalk`` per walked subtree (processes run one after another for a device),
   ``--netsnmp-parallel`` (16) devices at once.
4. **Net-SNMP, fixed set**: the fixed read of step 2 the same way.
5. **fsm status poll**: what the daemon's status poll reads per device (identity to follow
   the device, status, alerts; ``read_identified(status_only=True)``), beside the full read.
6. **snmpsim ceiling**: raw 30-varbind GETs (no client library), 64 in flight, for 3 s:
   the most requests per second the agent answers; divided by the requests a device
   read takes, the most devices per second any client could reach here.

Poller CPU is this process's CPU time (``time.process_time``) for fsm, and the children's
``getrusage`` for Net-SNMP; snmpsim's own CPU is read from /proc. snmpsim and the poller
share this machine's cores, so snmpsim is often the limit: compare against its ceiling.

usage: .venv/bin/python bench/snmp_read.py [--devices 200] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsm_client.config import Credential
from fsm_client.reader import identify, read_device, read_identified
from fsm_client.scan import default_pool
from fsm_client.snmp import ber
from fsm_client.snmp.session import PysnmpSource
from fsm_client.snmp.snmpsim import Snmpsim, loopback_range
from fsm_client.snmp.source import SnmpValue
from fsm_devtools.fixtures.snmp import community_credential, walks_dir

SUPPLIES, MARKER, HR_DEVICE = "1.3.6.1.2.1.43.11.1.1", "1.3.6.1.2.1.43.10.2.1", "1.3.6.1.2.1.25.3.2.1"
FIXED_GET = (
    [f"1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)]
    + [
        "1.3.6.1.2.1.43.5.1.1.17.1",
        "1.3.6.1.2.1.43.5.1.1.16.1",
        "1.3.6.1.2.1.25.3.2.1.3.1",
        "1.3.6.1.2.1.25.3.5.1.1.1",
        "1.3.6.1.2.1.25.3.5.1.2.1",
        "1.3.6.1.2.1.25.3.2.1.5.1",
        "1.3.6.1.2.1.43.10.2.1.4.1.1",
        "1.3.6.1.2.1.43.10.2.1.5.1.1",
        "1.3.6.1.2.1.2.2.1.6.1",
        "1.3.6.1.2.1.2.2.1.6.2",
        "1.3.6.1.2.1.2.2.1.3.1",
        "1.3.6.1.2.1.2.2.1.3.2",
    ]
    + [f"1.3.6.1.2.1.43.11.1.1.9.1.{i}" for i in range(1, 6)]
    + [f"1.3.6.1.2.1.43.11.1.1.8.1.{i}" for i in range(1, 6)]
    + ["1.3.6.1.2.1.43.8.2.1.9.1.1"]
)
FIXED_WALKS = (SUPPLIES, MARKER, HR_DEVICE)
assert len(FIXED_GET) == 30


@dataclass
class Result:
    label: str
    devices: int
    wall: float
    cpu: float  # poller CPU seconds
    agent_cpu: float  # snmpsim CPU seconds
    requests: int = 0
    failures: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.devices / self.wall


def agent_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class RecordingPysnmpSource(PysnmpSource):
    """Counts requests and remembers what was asked, to replay the same work with Net-SNMP."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.requests = 0
        self.got: list[str] = []
        self.walked: list[str] = []

    async def _request(self, *args: Any, **kw: Any) -> Any:  # type: ignore[override]
        self.requests += 1
        return await super()._request(*args, **kw)

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        self.got.extend(oids)
        return await super().get(oids)

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        self.walked.append(oid)
        return await super().walk(oid, max_rows=max_rows)

    async def walk_many(self, roots: Any, *, max_rows: int = 10_000) -> dict[str, list[Any]]:
        self.walked.extend(roots)
        return await super().walk_many(roots, max_rows=max_rows)


@dataclass
class Device:
    ip: str
    walk: str
    credential: Credential
    got: list[str] = field(default_factory=list)
    walked: list[str] = field(default_factory=list)


async def fsm_reader(
    sim: Snmpsim, devices: list[Device], concurrency: int, timeout: float, *, status_only: bool = False
) -> Result:
    pool = default_pool()
    gate = asyncio.Semaphore(concurrency)
    requests = failures = 0

    async def one(d: Device) -> None:
        nonlocal requests, failures
        async with gate:
            src = RecordingPysnmpSource(d.ip, d.credential, port=sim.port, timeout=timeout, retries=1)
            if status_only:
                dev = await read_identified(src, pool, await identify(src), ip=d.ip, status_only=True)
            else:
                dev = await read_device(src, pool, ip=d.ip)
                d.got, d.walked = list(dict.fromkeys(src.got)), list(dict.fromkeys(src.walked))
            requests += src.requests
            failures += dev.reachability != "ok"

    assert sim.proc is not None
    a0, c0, t0 = agent_cpu(sim.proc.pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(d) for d in devices))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    label = (
        "fsm status poll (status, alerts, serial)"
        if status_only
        else "fsm reader (read_device, full PMD read)"
    )
    return Result(label, len(devices), wall, cpu, agent_cpu(sim.proc.pid) - a0, requests, failures)


async def fsm_fixed(
    sim: Snmpsim, devices: list[Device], concurrency: int, timeout: float, *, together: bool = False
) -> Result:
    gate = asyncio.Semaphore(concurrency)
    requests = failures = 0

    async def one(d: Device) -> None:
        nonlocal requests, failures
        async with gate:
            src = RecordingPysnmpSource(d.ip, d.credential, port=sim.port, timeout=timeout, retries=1)
            got = await src.get(FIXED_GET)
            if together:
                rows = list((await src.walk_many(FIXED_WALKS)).values())
            else:
                rows = [await src.walk(w) for w in FIXED_WALKS]
            requests += src.requests
            failures += src.reachability != "ok"
            del got, rows

    assert sim.proc is not None
    a0, c0, t0 = agent_cpu(sim.proc.pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(d) for d in devices))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    label = (
        "fsm session, fixed set, walk_many (3 tables per GETBULK)"
        if together
        else "fsm session, fixed set (30-OID GET + 3 GETBULK walks)"
    )
    return Result(label, len(devices), wall, cpu, agent_cpu(sim.proc.pid) - a0, requests, failures)


def netsnmp(
    sim: Snmpsim, devices: list[Device], parallel: int, label: str, *, fixed: bool, timeout: float
) -> Result:
    def one(d: Device) -> int:
        comm = d.credential.community.reveal()
        base = ["-v2c", "-c", comm, "-On", "-t", str(timeout), "-r", "1", f"{d.ip}:{sim.port}"]
        gets = FIXED_GET if fixed else d.got
        walks = FIXED_WALKS if fixed else d.walked
        bad = 0
        if gets:
            bad += (
                subprocess.run(
                    ["snmpget", *base, *gets], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                ).returncode
                != 0
            )
        for w in walks:
            bad += (
                subprocess.run(
                    ["snmpbulkwalk", *base, w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                ).returncode
                != 0
            )
        return bad

    assert sim.proc is not None
    a0, c0, t0 = agent_cpu(sim.proc.pid), children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(parallel) as ex:
        failures = sum(ex.map(one, devices))
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    procs = sum(
        (1 if (FIXED_GET if fixed else d.got) else 0) + len(FIXED_WALKS if fixed else d.walked)
        for d in devices
    )
    r = Result(label, len(devices), wall, cpu, agent_cpu(sim.proc.pid) - a0, failures=failures)
    r.notes.append(f"{procs / len(devices):.1f} processes per device")
    return r


async def snmpsim_ceiling(
    sim: Snmpsim, devices: list[Device], seconds: float = 3.0, in_flight: int = 64
) -> float:
    """GET requests of 30 varbinds per second snmpsim answers, with a raw client."""
    loop = asyncio.get_running_loop()
    answered = 0
    waiting: dict[int, asyncio.Future[None]] = {}

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            try:
                rid = ber.decode_message(data).request_id
            except ber.BerError:
                return
            fut = waiting.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
    templates = [
        (
            d.ip,
            ber.RequestTemplate.get(
                version=1, community=d.credential.community.reveal().encode(), oids=FIXED_GET
            ),
        )
        for d in devices
    ]
    rid = ber.MIN_REQUEST_ID
    deadline = loop.time() + seconds

    async def worker(k: int) -> None:
        nonlocal rid, answered
        i = k
        while loop.time() < deadline:
            ip, template = templates[i % len(templates)]
            i += in_flight
            rid += 1
            fut = waiting[rid] = loop.create_future()
            transport.sendto(template.render(rid), (ip, sim.port))
            try:
                await asyncio.wait_for(fut, 2.0)
                answered += 1
            except TimeoutError:
                waiting.pop(rid, None)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(in_flight)))
    elapsed = time.perf_counter() - t0
    transport.close()
    return answered / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=64, help="fsm devices in flight")
    ap.add_argument("--netsnmp-parallel", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--walks", type=Path, default=walks_dir())
    a = ap.parse_args()

    names = sorted(p.parent.name for p in a.walks.glob("*/device.snmprec"))
    endpoints = loopback_range("127.0.0.2", a.devices)
    print(
        f"snmpsim: {len(names)} walks served on {endpoints[0]}..{endpoints[-1]}; "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )
    with Snmpsim(a.walks, endpoints=endpoints, ready_timeout=120) as sim:
        chosen = [names[i % len(names)] for i in range(len(endpoints))]
        devices = [
            Device(ip, name, community_credential(sim.community(name)))
            for ip, name in zip(endpoints, chosen, strict=True)
        ]
        # warm-up: snmpsim indexes each recording on first use; not part of any figure
        for name in names:
            subprocess.run(
                [
                    "snmpget",
                    "-v2c",
                    "-c",
                    sim.community(name),
                    "-t",
                    "10",
                    f"{endpoints[0]}:{sim.port}",
                    "1.3.6.1.2.1.1.2.0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        results: list[Result] = []
        results.append(asyncio.run(fsm_reader(sim, devices, a.concurrency, a.timeout)))
        results.append(asyncio.run(fsm_fixed(sim, devices, a.concurrency, a.timeout)))
        together = asyncio.run(fsm_fixed(sim, devices, a.concurrency, a.timeout, together=True))
        x = a.netsnmp_parallel
        results.append(
            netsnmp(
                sim,
                devices,
                x,
                f"Net-SNMP snmpget+snmpbulkwalk, same work as reader, x{x}",
                fixed=False,
                timeout=a.timeout,
            )
        )
        results.append(
            netsnmp(
                sim,
                devices,
                x,
                f"Net-SNMP snmpget+snmpbulkwalk, fixed set, x{x}",
                fixed=True,
                timeout=a.timeout,
            )
        )
        poll = asyncio.run(fsm_reader(sim, devices, a.concurrency, a.timeout, status_only=True))
        ceiling = asyncio.run(snmpsim_ceiling(sim, devices))

    reader, fixed, ns_reader, ns_fixed = results
    results.insert(2, together)
    results.insert(1, poll)
    print()
    print(f"{'':64} {'dev/s':>8} {'poller CPU':>11} {'agent CPU':>10} {'failed':>6}")
    for r in results:
        print(
            f"{r.label:64} {r.rate:8.1f} {r.cpu / r.devices * 1000:8.2f} ms "
            f"{r.agent_cpu / r.devices * 1000:7.2f} ms {r.failures:6d}  {' '.join(r.notes)}"
        )
    per_dev_reader = reader.requests / reader.devices
    per_dev_fixed = fixed.requests / fixed.devices
    print(f"{'snmpsim ceiling (raw 30-varbind GETs, 64 in flight)':64} {ceiling:8.1f} req/s")
    print(
        f"  = about {ceiling / per_dev_reader:.1f} dev/s for the reader "
        f"({per_dev_reader:.1f} requests/device), "
        f"{ceiling / per_dev_fixed:.1f} dev/s for the fixed set ({per_dev_fixed:.1f} requests/device); "
        "walk requests cost the agent more or less than a 30-OID GET, so this is an estimate"
    )
    print()
    print(
        f"ratios (same run): reader vs Net-SNMP same work: {reader.rate / ns_reader.rate:.2f}x devices/s, "
        f"{ns_reader.cpu / max(reader.cpu, 1e-9):.2f}x less poller CPU; "
        f"fixed set vs Net-SNMP: {fixed.rate / ns_fixed.rate:.2f}x devices/s, "
        f"{ns_fixed.cpu / max(fixed.cpu, 1e-9):.2f}x less poller CPU; "
        f"fixed set with walk_many vs Net-SNMP: {together.rate / ns_fixed.rate:.2f}x devices/s"
    )
    print(f"reader at {reader.rate / (ceiling / per_dev_reader) * 100:.0f} % of snmpsim's ceiling")
    print(
        f"status poll vs full read (same run): {poll.rate / reader.rate:.2f}x devices/s, "
        f"{reader.cpu / max(poll.cpu, 1e-9):.2f}x less poller CPU, "
        f"{poll.requests / poll.devices:.1f} vs {per_dev_reader:.1f} requests/device"
    )
    ok = reader.rate > ns_reader.rate and reader.failures == 0
    print("goal (fsm reader ahead of Net-SNMP, no failed device):", "MET" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

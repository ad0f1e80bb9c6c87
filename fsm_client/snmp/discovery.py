"""Discovery: which addresses of a range answer SNMP, with which credential.

A sweep is not a pysnmp job: pysnmp spends ~7 ms of CPU per silent address (about 140
addresses a second), so a /16 would take eight minutes. ``sweep`` instead encodes one
GET of sysObjectID.0 + sysDescr.0 per credential once (``ber.RequestTemplate``), patches
the request id per send, sends from one asyncio UDP socket under a token-bucket rate,
and takes an answer only from the address and port probed, with that probe's request id
(random per probe; others are dropped and logged as a warning naming their sender).
Each address gets ``1 + retries``
attempts ``timeout`` seconds apart; it is settled when it answers or its last attempt
times out.

Credentials are tried in order, each on the addresses no earlier one found. SNMPv1/v2c
probes are raw; for SNMPv3 the sweep sends a raw engine-discovery probe (answered by any
v3 agent without credentials) and reads sysObjectID/sysDescr with pysnmp only from the
addresses that answered it.

Only unicast IPv4 addresses are probed: network and broadcast addresses of a CIDR block,
``.0``/``.255`` in a dash range, multicast, ``0.0.0.0/8`` and the reserved class E never.

>>> list(expand_targets(["10.0.0.0/30", "10.0.1.254-10.0.2.1"], exclude=["10.0.0.2"]))
['10.0.0.1', '10.0.1.254', '10.0.2.1']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import msgspec

from fsm_protocol.errors import ConfigError

from ..config import Credential
from ..errors import SnmpError
from . import ber
from .addresses import blocked, check_span, spans

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
MAX_ADDRESSES = 1 << 20  # a /12; a wider sweep is almost certainly a typo
MAX_DESCR = 1024  # sysDescr kept per device
MAX_SENDERS_LOGGED = 20

log = logging.getLogger(__name__)


class Found(msgspec.Struct, kw_only=True):
    """An address that answered SNMP, and what it said."""

    ip: str
    credential: str  # name of the credential that worked
    sys_object_id: str
    sys_descr: str
    version: str = "2c"
    port: int = 161


@dataclass
class SweepProgress:
    """Passed to the ``progress`` callback a few times a second and at the end of each phase."""

    phase: int  # 1-based, one per credential
    phases: int
    credential: str
    done: int  # addresses settled in this phase
    total: int  # addresses probed in this phase
    found: int  # found so far, all phases


# -- targets ----------------------------------------------------------------------------------


def expand_targets(specs: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[str]:
    """Unicast IPv4 addresses of ``specs`` (CIDR, ``a.b.c.d-e``, ``a.b.c.d-a.b.c.e``, an
    address or a host name) minus ``exclude`` (same forms), in order, without repeats.

    Raises ConfigError for a malformed spec, for one that holds no unicast address (only
    multicast, broadcast, reserved ...; see ``addresses``), and for more than
    ``MAX_ADDRESSES`` addresses in all."""
    specs = list(specs)
    excluded = [(a, b) for e in exclude for a, b, _ in spans(e, whole=True)]
    found = [(spec, s) for spec in specs for s in spans(spec)]
    for spec, (first, last, skip_edges) in found:
        check_span(spec, first, last, skip_edges)
    total = sum(b - a + 1 for _, (a, b, _) in found)
    if total > MAX_ADDRESSES:
        raise ConfigError(
            f"targets {specs!r} cover {total} addresses, more than {MAX_ADDRESSES}",
            hint="sweep the subnets printers live in, e.g. several /24s",
        )
    seen: set[int] = set()
    for _, (first, last, skip_edges) in found:
        for n in range(first, last + 1):
            if n in seen or blocked(n) or (skip_edges and (n & 0xFF) in (0, 255)):
                continue
            if any(a <= n <= b for a, b in excluded):
                continue
            seen.add(n)
            yield socket.inet_ntoa(n.to_bytes(4, "big"))


# -- the prober -------------------------------------------------------------------------------


class _Prober(asyncio.DatagramProtocol):
    """One UDP socket; answers matched to pending probes by request id and source address
    and port. An answer that matches no probe sent to its sender (late, duplicate, or with
    another probe's id) is dropped and counted in ``misdirected`` by sender."""

    def __init__(self, port: int) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.port = port
        self.pending: dict[int, str] = {}  # request id -> address
        self.answers: dict[str, bytes] = {}  # address -> raw answer of the current phase
        self.expect_v3 = False
        self.garbage = 0
        self.misdirected: Counter[str] = Counter()  # "address:port" -> answers dropped

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            rid = ber.v3_message_id(data) if self.expect_v3 else ber.decode_message(data).request_id
        except ber.BerError:
            self.garbage += 1
            return
        ip = self.pending.get(rid)
        if ip is None or ip != addr[0] or addr[1] != self.port:
            sender = f"{addr[0]}:{addr[1]}"
            if sender in self.misdirected or len(self.misdirected) < 10_000:
                self.misdirected[sender] += 1
            return
        del self.pending[rid]
        self.answers[ip] = data

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors on an unconnected socket say nothing we act on


class _Sweeper:
    def __init__(
        self,
        *,
        port: int,
        timeout: float,
        retries: int,
        rate: float,
        progress: Callable[[SweepProgress], None] | None,
    ) -> None:
        self.port, self.timeout, self.attempts = port, timeout, 1 + max(0, retries)
        self.rate = float(rate) if rate and rate > 0 else 1e9
        # At most this many sends between two looks at the event loop (answers, progress).
        self.burst = min(max(1.0, self.rate * 0.02), 1024.0)
        self.progress = progress
        self.proto = _Prober(port)

    def _rid(self) -> int:
        """A random request id no pending probe has: whoever sees one probe cannot tell
        the ids of the others (sequential ids would say them)."""
        while True:
            rid = ber.MIN_REQUEST_ID + secrets.randbelow(ber.MAX_REQUEST_ID - ber.MIN_REQUEST_ID + 1)
            if rid not in self.proto.pending:
                return rid

    async def probe(
        self,
        addresses: Sequence[str],
        template: ber.RequestTemplate,
        *,
        v3: bool,
        report: Callable[[int, int], None],
    ) -> dict[str, bytes]:
        """Send ``template`` to every address (with retries); the raw answers by address."""
        proto = self.proto
        transport = proto.transport
        assert transport is not None
        proto.pending.clear()
        proto.answers = {}
        proto.expect_v3 = v3
        loop = asyncio.get_running_loop()
        todo = iter(addresses)
        remaining = len(addresses)
        timers: deque[tuple[float, int, str, int]] = deque()  # (deadline, rid, ip, attempt)
        expired = 0
        tokens, last = self.burst, loop.time()
        next_report = last
        port = self.port
        while True:
            now = loop.time()
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            last = now
            while timers and timers[0][0] <= now:
                _, rid, ip, attempt = timers[0]
                if rid not in proto.pending:
                    timers.popleft()  # answered
                    continue
                if attempt >= self.attempts:
                    timers.popleft()
                    del proto.pending[rid]
                    expired += 1
                    continue
                if tokens < 1:
                    break
                timers.popleft()
                transport.sendto(template.render(rid), (ip, port))
                tokens -= 1
                timers.append((now + self.timeout, rid, ip, attempt + 1))
            while remaining and tokens >= 1:
                ip = next(todo)
                remaining -= 1
                rid = self._rid()
                proto.pending[rid] = ip
                transport.sendto(template.render(rid), (ip, port))
                tokens -= 1
                timers.append((now + self.timeout, rid, ip, 1))
            if now >= next_report:
                report(len(proto.answers) + expired, len(addresses))
                next_report = now + 0.2
            if not remaining and not proto.pending:
                break
            if remaining:
                await asyncio.sleep(max(0.0, (1 - tokens) / self.rate))
            else:
                # only waiting for answers or retry deadlines now
                wait = timers[0][0] - now if timers else 0.01
                await asyncio.sleep(min(max(wait, 0.001), 0.05))
        report(len(addresses), len(addresses))
        return proto.answers


def _found_from_v12(ip: str, raw: bytes, cred: Credential, port: int) -> Found | None:
    try:
        msg = ber.decode_message(raw)
    except ber.BerError:
        return None
    if msg.pdu_type != ber.RESPONSE or msg.community != cred.community.reveal().encode():
        return None
    values = {oid: v for oid, v in msg.varbinds if v is not None}
    oid_v, descr_v = values.get(SYS_OBJECT_ID), values.get(SYS_DESCR)
    sys_object_id = str(oid_v.value) if oid_v is not None and oid_v.tag == "oid" else ""
    raw_descr = descr_v.as_bytes() if descr_v is not None else None
    descr = (raw_descr or b"")[:MAX_DESCR].decode("utf-8", "replace")
    return Found(
        ip=ip,
        credential=cred.name,
        sys_object_id=sys_object_id,
        sys_descr=descr,
        version=cred.version,
        port=port,
    )


async def _read_v3(
    ips: Sequence[str], cred: Credential, *, port: int, timeout: float, retries: int, concurrency: int = 32
) -> list[Found]:
    from .session import PysnmpSource  # pysnmp only for the few addresses that speak v3

    gate = asyncio.Semaphore(concurrency)

    async def one(ip: str) -> Found | None:
        async with gate, PysnmpSource(ip, cred, port=port, timeout=timeout, retries=retries) as src:
            try:
                got = await src.get([SYS_OBJECT_ID, SYS_DESCR])
            except SnmpError:
                return None
        if not got:
            return None
        oid_v, descr_v = got.get(SYS_OBJECT_ID), got.get(SYS_DESCR)
        raw_descr = descr_v.as_bytes() if descr_v is not None else None
        return Found(
            ip=ip,
            credential=cred.name,
            sys_object_id=str(oid_v.value) if oid_v is not None and oid_v.tag == "oid" else "",
            sys_descr=(raw_descr or b"")[:MAX_DESCR].decode("utf-8", "replace"),
            version="3",
            port=port,
        )

    return [f for f in await asyncio.gather(*(one(ip) for ip in ips)) if f is not None]


def _log_misdirected(senders: Counter[str]) -> None:
    for sender, n in senders.most_common(MAX_SENDERS_LOGGED):
        log.warning(
            "discovery: %s sent %d answer(s) that matched no probe sent to it "
            "(wrong request id or port); dropped",
            sender,
            n,
        )
    if len(senders) > MAX_SENDERS_LOGGED:
        log.warning(
            "discovery: %d more senders sent answers that matched no probe; dropped",
            len(senders) - MAX_SENDERS_LOGGED,
        )


async def sweep(
    targets: Iterable[str],
    *,
    credentials: Sequence[Credential],
    port: int = 161,
    timeout: float = 1.0,
    retries: int = 1,
    rate: float = 5000,
    exclude: Iterable[str] = (),
    progress: Callable[[SweepProgress], None] | None = None,
) -> list[Found]:
    """Every address of ``targets`` (minus ``exclude``) that answers SNMP with one of
    ``credentials`` (tried in order), in address order. ``rate`` caps probes per second
    (retries included); 0 means as fast as the machine sends."""
    if not credentials:
        raise ConfigError(
            "no SNMP credentials to sweep with",
            hint="add a [[credentials]] entry to the config or pass --community",
        )
    addresses = list(expand_targets(targets, exclude))
    sweeper = _Sweeper(port=port, timeout=timeout, retries=retries, rate=rate, progress=progress)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: sweeper.proto, local_addr=("0.0.0.0", 0))
    sock = transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):  # else the kernel's limit applies; retries cover drops
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    found: dict[str, Found] = {}
    v3_answered: list[str] | None = None
    phases = len(credentials)
    try:
        for phase, cred in enumerate(credentials, 1):
            left = [ip for ip in addresses if ip not in found]
            if not left:
                break

            def report(done: int, total: int, _phase: int = phase, _cred: Credential = cred) -> None:
                if progress is not None:
                    progress(SweepProgress(_phase, phases, _cred.name, done, total, len(found)))

            if cred.version == "3":
                if v3_answered is None:  # one engine-discovery probe serves every v3 credential
                    answers = await sweeper.probe(
                        left, ber.RequestTemplate.v3_discovery(), v3=True, report=report
                    )
                    v3_answered = list(answers)
                candidates = [ip for ip in v3_answered if ip not in found]
                for f in await _read_v3(candidates, cred, port=port, timeout=timeout, retries=retries):
                    found[f.ip] = f
                report(len(left), len(left))
                continue
            template = ber.RequestTemplate.get(
                version=0 if cred.version == "1" else 1,
                community=cred.community.reveal().encode(),
                oids=[SYS_OBJECT_ID, SYS_DESCR],
            )
            answers = await sweeper.probe(left, template, v3=False, report=report)
            for ip, raw in answers.items():
                if (answered := _found_from_v12(ip, raw, cred, port)) is not None:
                    found[ip] = answered
    finally:
        transport.close()
        _log_misdirected(sweeper.proto.misdirected)
    order = {ip: i for i, ip in enumerate(addresses)}
    return sorted(found.values(), key=lambda f: order[f.ip])


__all__ = ["MAX_ADDRESSES", "Found", "SweepProgress", "expand_targets", "sweep"]

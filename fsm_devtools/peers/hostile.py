"""A misbehaving SNMP agent on real loopback UDP, for proving the client survives bad devices.

The community chooses the misbehaviour (the part before any ``/``; what follows only
keeps per-test state apart, e.g. ``dies-after-2/test-x``):

==================  ===============================================================
``public``          a well-behaved small printer (system group, Printer-MIB supplies)
``garbage-first``   before each good answer: random bytes, a truncated copy, the same
                    answer with a wrong request id, and a BER length that overruns
``malformed``       every answer is malformed BER (never a good one)
``truncated``       every answer is cut in half
``wrong-id``        every answer carries a wrong request id
``other-port``      good answers, sent from another UDP port than the one asked
``shifted-id``      every answer carries the request id + 1: the id of the request the
                    client sent next, often to another device (buggy firmware, or anyone
                    on the network who sees one request and guesses the next)
``walk-malformed``  GETs answered well, GETNEXT/GETBULK with malformed BER
``wrong-types``     values of the wrong SNMP types (an OID as a string, counters as
                    text, levels as IpAddress, sysDescr as an INTEGER)
``huge``            sysDescr, serial and supply descriptions of 64,000 bytes; answers
                    bigger than one datagram get tooBig
``loop``            walks of the supplies table jump back to its first row
``endless``         the supplies table never ends (every GETNEXT finds one more row)
``stray``           GET answers carry extra OIDs that were not asked for
``gen-err``         GETs of more than 4 OIDs answer genErr
``dies-after-N``    answers N requests well, then is silent
==================  ===============================================================

>>> with HostileAgent() as agent:  # doctest: +SKIP
...     agent.host, agent.port
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping

from fsm_client.snmp import ber
from fsm_client.snmp.source import SnmpValue, oid_key

SUPPLY = "1.3.6.1.2.1.43.11.1.1"
HUGE = 64_000  # "64 KB": the largest string that still fits one datagram with its headers
MAX_ANSWER = 65_000  # bytes of varbinds an answer may carry before tooBig

_V = SnmpValue
_Varbinds = list[tuple[str, SnmpValue | bytes | None]]
_Answer = tuple[int, int, _Varbinds]  # error-status, error-index, varbinds


def default_mib() -> dict[str, SnmpValue]:
    """A small colour printer: system group, serial, a page counter, four toners."""
    mib: dict[str, SnmpValue] = {
        "1.3.6.1.2.1.1.1.0": _V("octets", b"Hostile Printer 1.0"),
        "1.3.6.1.2.1.1.2.0": _V("oid", "1.3.6.1.4.1.99999.1"),
        "1.3.6.1.2.1.1.3.0": _V("timeticks", 12345),
        "1.3.6.1.2.1.1.5.0": _V("octets", b"hostile"),
        "1.3.6.1.2.1.25.3.2.1.3.1": _V("octets", b"Hostile Printer"),
        "1.3.6.1.2.1.43.5.1.1.17.1": _V("octets", b"HOSTILE123"),
        "1.3.6.1.2.1.43.10.2.1.4.1.1": _V("counter32", 4242),
    }
    for i, colour in enumerate(("Black", "Cyan", "Magenta", "Yellow"), 1):
        mib[f"{SUPPLY}.4.1.{i}"] = _V("integer", 3)  # prtMarkerSuppliesClass: supplyThatIsConsumed
        mib[f"{SUPPLY}.5.1.{i}"] = _V("integer", 3)  # prtMarkerSuppliesType: toner
        mib[f"{SUPPLY}.6.1.{i}"] = _V("octets", f"{colour} Toner".encode())
        mib[f"{SUPPLY}.7.1.{i}"] = _V("integer", 19)  # percent
        mib[f"{SUPPLY}.8.1.{i}"] = _V("integer", 100)
        mib[f"{SUPPLY}.9.1.{i}"] = _V("integer", 10 * i)
    return mib


def _wrong_types(mib: dict[str, SnmpValue]) -> dict[str, SnmpValue]:
    out = dict(mib)
    out["1.3.6.1.2.1.1.1.0"] = _V("integer", 7)
    out["1.3.6.1.2.1.1.2.0"] = _V("octets", b"1.3.6.1.4.1.99999.1")
    out["1.3.6.1.2.1.43.10.2.1.4.1.1"] = _V("octets", b"n/a")
    out["1.3.6.1.2.1.43.5.1.1.17.1"] = _V("counter64", 2**63)
    for i in range(1, 5):
        out[f"{SUPPLY}.8.1.{i}"] = _V("ipaddress", "10.0.0.1")
        out[f"{SUPPLY}.9.1.{i}"] = _V("oid", "1.3.6.1")
    out[f"{SUPPLY}.6.1.2"] = _V("null", None)
    return out


def _huge(mib: dict[str, SnmpValue]) -> dict[str, SnmpValue]:
    out = dict(mib)
    descriptions = [f"{SUPPLY}.6.1.{i}" for i in range(1, 5)]
    for oid in ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.43.5.1.1.17.1", *descriptions):
        out[oid] = _V("octets", b"A" * HUGE)
    return out


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: HostileAgent) -> None:
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            request = ber.decode_message(data)
        except ber.BerError:
            return
        # "other-port": the answer comes from a second socket of the agent
        other = request.community.startswith(b"other-port")
        transport = self.agent.other_transport if other else self.transport
        for packet in self.agent.answer(request):
            assert transport is not None
            transport.sendto(packet, addr)


class HostileAgent:
    """Runs on its own event loop in a thread, so sync and async tests can both use it."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, mib: Mapping[str, SnmpValue] | None = None
    ) -> None:
        self.host, self.port = host, port
        base = dict(mib or default_mib())
        self.mibs = {"default": base, "wrong-types": _wrong_types(base), "huge": _huge(base)}
        self._sorted = {k: sorted(v, key=oid_key) for k, v in self.mibs.items()}
        self._keys = {k: [oid_key(o) for o in v] for k, v in self._sorted.items()}
        self.requests: Counter[str] = Counter()  # by community
        self.request_ids: dict[str, list[int]] = {}  # by community, in the order received
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._transport: asyncio.BaseTransport | None = None
        self.other_transport: asyncio.DatagramTransport | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> HostileAgent:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="hostile-snmp-agent", daemon=True)
        self._thread.start()

        async def bind() -> asyncio.BaseTransport:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.host, self.port)
            )
            self.other_transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(self.host, 0)
            )
            return transport

        self._transport = asyncio.run_coroutine_threadsafe(bind(), loop).result(timeout=10)
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        transport, self._transport = self._transport, None
        other, self.other_transport = self.other_transport, None

        async def close() -> None:
            for t in (transport, other):
                if t is not None:
                    t.close()
            await asyncio.sleep(0.01)  # the socket closes in a callback after close()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> HostileAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour -------------------------------------------------------------------------

    def answer(self, req: ber.Message) -> list[bytes]:
        """The datagrams sent back for one request (empty = silence)."""
        community = req.community.decode("latin-1")
        mode = community.split("/", 1)[0]
        self.requests[community] += 1
        self.request_ids.setdefault(community, []).append(req.request_id)
        m = re.fullmatch(r"dies-after-(\d+)", mode)
        if m:
            if self.requests[community] > int(m.group(1)):
                return []
            mode = "public"
        if mode not in (
            "public",
            "other-port",
            "garbage-first",
            "malformed",
            "truncated",
            "wrong-id",
            "shifted-id",
            "walk-malformed",
            "wrong-types",
            "huge",
            "loop",
            "endless",
            "stray",
            "gen-err",
        ):
            return []  # unknown community: real agents stay silent
        good = self._respond(req, mode)
        if mode == "garbage-first":
            wrong_id = self._respond(req, mode, request_id=req.request_id ^ 0x5A5A5A)
            return [os.urandom(40), good[: len(good) // 2], wrong_id, _overrun(good), good]
        if mode == "malformed" or (mode == "walk-malformed" and req.pdu_type != ber.GET):
            return [_overrun(good)]
        if mode == "truncated":
            return [good[: len(good) // 2]]
        if mode == "wrong-id":
            return [self._respond(req, mode, request_id=req.request_id ^ 0x5A5A5A)]
        if mode == "shifted-id":
            return [self._respond(req, mode, request_id=req.request_id + 1)]
        return [good]

    def _respond(self, req: ber.Message, mode: str, *, request_id: int | None = None) -> bytes:
        mib_name = mode if mode in self.mibs else "default"
        v1 = req.version == 0
        if req.pdu_type == ber.GET:
            status, index, varbinds = self._answer_get(req, mib_name, mode, v1)
        elif req.pdu_type in (ber.GETNEXT, ber.GETBULK):
            status, index, varbinds = self._answer_next(req, mib_name, mode, v1)
        else:
            status, index, varbinds = 5, 0, list(req.varbinds)
        rid = req.request_id if request_id is None else request_id
        packet = ber.encode_message(
            version=req.version,
            community=req.community,
            pdu_type=ber.RESPONSE,
            request_id=rid,
            error_status=status,
            error_index=index,
            varbinds=varbinds,
        )
        if len(packet) > MAX_ANSWER:
            packet = ber.encode_message(
                version=req.version,
                community=req.community,
                pdu_type=ber.RESPONSE,
                request_id=rid,
                error_status=1,
                error_index=0,
                varbinds=[(o, None) for o, _ in req.varbinds],
            )
        return packet

    def _answer_get(self, req: ber.Message, mib_name: str, mode: str, v1: bool) -> _Answer:
        """(error-status, error-index, varbinds) of a GET."""
        if mode == "gen-err" and len(req.varbinds) > 4:
            return 5, 1, [(o, None) for o, _ in req.varbinds]
        varbinds: _Varbinds = []
        for i, (oid, _) in enumerate(req.varbinds, 1):
            value = self.mibs[mib_name].get(oid)
            if value is None and v1:
                return 2, i, [(o, None) for o, _ in req.varbinds]
            varbinds.append((oid, value if value is not None else ber.NO_SUCH_INSTANCE))
        if mode == "stray":
            varbinds.append(("1.3.6.1.2.1.1.4.0", _V("octets", b"not asked")))
        return 0, 0, varbinds

    def _answer_next(self, req: ber.Message, mib_name: str, mode: str, v1: bool) -> _Answer:
        """(error-status, error-index, varbinds) of a GETNEXT or GETBULK, within MAX_ANSWER."""
        if req.pdu_type == ber.GETNEXT:
            non_rep, reps = len(req.varbinds), 0
        else:
            non_rep, reps = min(req.error_status, len(req.varbinds)), max(0, req.error_index)
        cursors = [o for o, _ in req.varbinds]
        varbinds: _Varbinds = [self._next(mib_name, mode, oid, v1) for oid in cursors[:non_rep]]
        repeaters = cursors[non_rep:]
        size = 0
        for _ in range(reps):
            if not repeaters:
                break
            row = [self._next(mib_name, mode, oid, v1) for oid in repeaters]
            size += sum(len(ber.encode_value(v)) + len(o) for o, v in row)
            if size > MAX_ANSWER and varbinds:
                break
            varbinds.extend(row)
            repeaters = [o for o, _ in row]
        if v1:
            missing = [i for i, (_, v) in enumerate(varbinds, 1) if v is ber.END_OF_MIB_VIEW]
            if missing:
                return 2, missing[0], [(o, None) for o, _ in req.varbinds]
        return 0, 0, varbinds

    def _next(self, mib_name: str, mode: str, oid: str, v1: bool) -> tuple[str, SnmpValue | bytes]:
        key = oid_key(oid)
        supply = oid_key(SUPPLY)
        if mode == "loop" and key[: len(supply)] == supply and key > oid_key(f"{SUPPLY}.6.1.2"):
            first = f"{SUPPLY}.4.1.1"  # back to the start of the table
            return first, self.mibs[mib_name][first]
        if mode == "endless" and key[: len(supply)] == supply:
            if len(key) < len(supply) + 3:
                return f"{SUPPLY}.6.1.1", _V("octets", b"row 1")
            row = key[len(supply) + 2] + 1
            return f"{SUPPLY}.6.1.{row}", _V("octets", f"row {row}".encode())
        keys = self._keys[mib_name]
        i = bisect.bisect_right(keys, key)
        if i >= len(keys):
            return oid, ber.END_OF_MIB_VIEW
        name = self._sorted[mib_name][i]
        return name, self.mibs[mib_name][name]


def _overrun(packet: bytes) -> bytes:
    """The packet with its outer length claiming more bytes than there are."""
    return b"\x30\x84\x00\x01\x00\x00" + packet[2:]


__all__ = ["HUGE", "SUPPLY", "HostileAgent", "default_mib"]

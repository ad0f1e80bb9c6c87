"""The few BER encodings SNMP needs, for the discovery sweep (and the test agents).

pysnmp costs about 7 ms of CPU per silent address; a sweep instead encodes its GET once
and patches the request id per send (``RequestTemplate``). Request ids are kept in
``[0x01000000, 0x7fffffff]`` so that they always take exactly four content bytes and the
patch never changes a length. Decoding is strict: anything that is not well-formed BER of
the expected shape raises ``BerError`` (a ``ValueError``), never something else.

>>> t = RequestTemplate.get(version=1, community=b"public", oids=["1.3.6.1.2.1.1.2.0"])
>>> msg = decode_message(t.render(0x01020304))
>>> (msg.version, msg.community, msg.pdu_type, msg.request_id, msg.varbinds[0][0])
(1, b'public', 160, 16909060, '1.3.6.1.2.1.1.2.0')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .source import SnmpValue, Tag

# PDU tags
GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
GETBULK = 0xA5
REPORT = 0xA8

# varbind exception values (v2c): the OID has no value
NO_SUCH_OBJECT = b"\x80\x00"
NO_SUCH_INSTANCE = b"\x81\x00"
END_OF_MIB_VIEW = b"\x82\x00"
_EXCEPTIONS = {0x80: "noSuchObject", 0x81: "noSuchInstance", 0x82: "endOfMibView"}

MIN_REQUEST_ID = 0x01000000
MAX_REQUEST_ID = 0x7FFFFFFF

_TAG_NUMBERS: dict[Tag, int] = {
    "integer": 0x02,
    "octets": 0x04,
    "null": 0x05,
    "oid": 0x06,
    "ipaddress": 0x40,
    "counter32": 0x41,
    "gauge32": 0x42,
    "timeticks": 0x43,
    "opaque": 0x44,
    "counter64": 0x46,
}
_TAG_NAMES: dict[int, Tag] = {v: k for k, v in _TAG_NUMBERS.items()}
_UNSIGNED = {0x41, 0x42, 0x43, 0x46}


class BerError(ValueError):
    """The bytes are not the BER the caller expected."""


# -- encoding ---------------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def encode_int_content(v: int, *, unsigned: bool = False) -> bytes:
    if unsigned and v < 0:
        raise ValueError(f"unsigned value {v} is negative")
    n = max(1, (v.bit_length() + 8) // 8)  # room for the sign bit
    out = v.to_bytes(n, "big", signed=True)
    while len(out) > 1 and ((out[0] == 0 and out[1] < 0x80) or (out[0] == 0xFF and out[1] >= 0x80)):
        out = out[1:]
    return out


def encode_int(v: int, tag: int = 0x02) -> bytes:
    return tlv(tag, encode_int_content(v, unsigned=tag in _UNSIGNED))


def encode_oid_content(oid: str) -> bytes:
    try:
        arcs = [int(p) for p in oid.strip(".").split(".")]
    except ValueError:
        raise BerError(f"not a dotted OID: {oid!r}") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or min(arcs) < 0:
        raise BerError(f"not a valid OID: {oid!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def encode_value(value: SnmpValue | bytes | None) -> bytes:
    """A varbind value: an ``SnmpValue``, ``None`` for NULL, or ``bytes`` already encoded."""
    if value is None:
        return b"\x05\x00"
    if isinstance(value, bytes):
        return value
    tag = _TAG_NUMBERS[value.tag]
    v = value.value
    if value.tag == "null":
        return b"\x05\x00"
    if value.tag == "oid":
        return tlv(tag, encode_oid_content(str(v)))
    if value.tag == "ipaddress":
        return tlv(tag, bytes(int(p) for p in str(v).split(".")))
    if isinstance(v, int):
        return encode_int(v, tag)
    if isinstance(v, str):
        v = v.encode()
    return tlv(tag, v or b"")


def encode_varbinds(varbinds: Sequence[tuple[str, SnmpValue | bytes | None]]) -> bytes:
    return tlv(
        0x30, b"".join(tlv(0x30, tlv(0x06, encode_oid_content(o)) + encode_value(v)) for o, v in varbinds)
    )


def encode_message(
    *,
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    varbinds: Sequence[tuple[str, SnmpValue | bytes | None]],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    """A whole v1 (version 0) or v2c (version 1) message.

    For GETBULK, ``error_status``/``error_index`` carry non-repeaters/max-repetitions."""
    pdu = tlv(
        pdu_type,
        encode_int(request_id)
        + encode_int(error_status)
        + encode_int(error_index)
        + encode_varbinds(varbinds),
    )
    return tlv(0x30, encode_int(version) + tlv(0x04, community) + pdu)


@dataclass(frozen=True)
class RequestTemplate:
    """A request encoded once; ``render(request_id)`` patches the four id bytes."""

    prefix: bytes
    suffix: bytes

    @classmethod
    def _with_marker(cls, encoded: bytes) -> RequestTemplate:
        marker = b"\x02\x04" + MIN_REQUEST_ID.to_bytes(4, "big")
        at = encoded.find(marker)
        if at < 0 or encoded.find(marker, at + 1) >= 0:
            raise BerError("request id not found exactly once in the template")
        return cls(encoded[: at + 2], encoded[at + 6 :])

    @classmethod
    def get(cls, *, version: int, community: bytes, oids: Sequence[str]) -> RequestTemplate:
        """A v1/v2c GET of ``oids``."""
        return cls._with_marker(
            encode_message(
                version=version,
                community=community,
                pdu_type=GET,
                request_id=MIN_REQUEST_ID,
                varbinds=[(o, None) for o in oids],
            )
        )

    @classmethod
    def v3_discovery(cls) -> RequestTemplate:
        """An SNMPv3 engine-discovery GET (noAuthNoPriv, reportable, no user).

        Every SNMPv3 agent answers it with a Report carrying its engine id, which tells a
        sweep where a v3 read is worth trying; the id patched is msgID."""
        header = tlv(
            0x30,
            b"\x02\x04"
            + MIN_REQUEST_ID.to_bytes(4, "big")
            + encode_int(65507)
            + tlv(0x04, b"\x04")
            + encode_int(3),
        )
        usm = tlv(
            0x30,
            tlv(0x04, b"") + encode_int(0) + encode_int(0) + tlv(0x04, b"") + tlv(0x04, b"") + tlv(0x04, b""),
        )
        pdu = tlv(GET, encode_int(0x01000001) + encode_int(0) + encode_int(0) + tlv(0x30, b""))
        scoped = tlv(0x30, tlv(0x04, b"") + tlv(0x04, b"") + pdu)
        return cls._with_marker(tlv(0x30, encode_int(3) + header + tlv(0x04, usm) + scoped))

    def render(self, request_id: int) -> bytes:
        if not MIN_REQUEST_ID <= request_id <= MAX_REQUEST_ID:
            raise ValueError(f"request id {request_id:#x} outside the four-byte range")
        return self.prefix + request_id.to_bytes(4, "big") + self.suffix


# -- decoding ---------------------------------------------------------------------------------


def read_tlv(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``; checks it fits before ``end``."""
    if pos + 2 > end:
        raise BerError(f"truncated TLV at byte {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError(f"multi-byte tag at byte {pos}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise BerError(f"unsupported length form {first:#x} at byte {pos - 1}")
        if pos + n > end:
            raise BerError(f"truncated length at byte {pos}")
        length = int.from_bytes(bytes(data[pos : pos + n]), "big")
        pos += n
    if pos + length > end:
        raise BerError(f"value of {length} bytes at byte {pos} runs past the end ({end})")
    return tag, pos, pos + length


def _expect(data: bytes | memoryview, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    t, start, stop = read_tlv(data, pos, end)
    if t != tag:
        raise BerError(f"expected {what} (tag {tag:#x}) at byte {pos}, got tag {t:#x}")
    return start, stop


def decode_int_content(content: bytes, *, unsigned: bool = False) -> int:
    if not content:
        raise BerError("empty INTEGER")
    if len(content) > 9:
        raise BerError(f"INTEGER of {len(content)} bytes")
    return int.from_bytes(content, "big", signed=not unsigned)


def decode_oid_content(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise BerError("empty or unterminated OID")
    arcs: list[int] = []
    v = 0
    for b in content:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_value(tag: int, content: bytes) -> SnmpValue | None:
    """A varbind value, or None for noSuchObject/noSuchInstance/endOfMibView."""
    if tag in _EXCEPTIONS:
        return None
    name = _TAG_NAMES.get(tag)
    if name is None:
        raise BerError(f"unknown value tag {tag:#x}")
    if name in ("octets", "opaque"):
        return SnmpValue(name, content)
    if name == "null":
        return SnmpValue(name, None)
    if name == "oid":
        return SnmpValue(name, decode_oid_content(content))
    if name == "ipaddress":
        if len(content) != 4:
            raise BerError(f"IpAddress of {len(content)} bytes")
        return SnmpValue(name, ".".join(str(b) for b in content))
    value = decode_int_content(content, unsigned=tag in _UNSIGNED)
    if tag in (0x41, 0x42, 0x43) and value > 0xFFFFFFFF:
        raise BerError(f"{name} value {value} does not fit 32 bits")
    return SnmpValue(name, value)


@dataclass
class Message:
    """A decoded v1/v2c message. For GETBULK, error_status/error_index are non-repeaters and
    max-repetitions. ``varbinds`` values are None where the agent sent an exception."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[str, SnmpValue | None]] = field(default_factory=list)


def decode_message(data: bytes) -> Message:
    """Decode a v1/v2c message; raises BerError for anything else or anything malformed."""
    end = len(data)
    start, stop = _expect(data, 0, end, 0x30, "message SEQUENCE")
    if stop != end:
        raise BerError(f"{end - stop} bytes after the message")
    a, b = _expect(data, start, stop, 0x02, "version")
    version = decode_int_content(bytes(data[a:b]))
    if version not in (0, 1):
        raise BerError(f"SNMP version field {version} is not v1/v2c")
    c, d = _expect(data, b, stop, 0x04, "community")
    community = bytes(data[c:d])
    pdu_type, p, pend = read_tlv(data, d, stop)
    if pdu_type not in (GET, GETNEXT, RESPONSE, SET, GETBULK, REPORT):
        raise BerError(f"unknown PDU type {pdu_type:#x}")
    ints = []
    for what in ("request-id", "error-status", "error-index"):
        x, p = _expect(data, p, pend, 0x02, what)
        ints.append(decode_int_content(bytes(data[x:p])))
    vstart, vend = _expect(data, p, pend, 0x30, "varbind list")
    varbinds: list[tuple[str, SnmpValue | None]] = []
    q = vstart
    while q < vend:
        s, e = _expect(data, q, vend, 0x30, "varbind")
        os_, oe = _expect(data, s, e, 0x06, "varbind OID")
        oid = decode_oid_content(bytes(data[os_:oe]))
        vtag, vs, ve = read_tlv(data, oe, e)
        if ve != e:
            raise BerError(f"extra bytes in the varbind of {oid}")
        varbinds.append((oid, decode_value(vtag, bytes(data[vs:ve]))))
        q = e
    return Message(version, community, pdu_type, ints[0], ints[1], ints[2], varbinds)


def v3_message_id(data: bytes) -> int:
    """The msgID of an SNMPv3 message (for matching a Report to a discovery probe)."""
    start, stop = _expect(data, 0, len(data), 0x30, "message SEQUENCE")
    a, b = _expect(data, start, stop, 0x02, "version")
    if decode_int_content(bytes(data[a:b])) != 3:
        raise BerError("not an SNMPv3 message")
    h, hend = _expect(data, b, stop, 0x30, "msgGlobalData")
    x, y = _expect(data, h, hend, 0x02, "msgID")
    return decode_int_content(bytes(data[x:y]))


def message_id(data: bytes) -> int:
    """The id that pairs an answer with its request: the request-id of a v1/v2c PDU, the
    msgID of an SNMPv3 message (whose PDU may be encrypted). Raises BerError."""
    start, stop = _expect(data, 0, len(data), 0x30, "message SEQUENCE")
    a, b = _expect(data, start, stop, 0x02, "version")
    version = decode_int_content(bytes(data[a:b]))
    if version == 3:
        h, hend = _expect(data, b, stop, 0x30, "msgGlobalData")
        x, y = _expect(data, h, hend, 0x02, "msgID")
    elif version in (0, 1):
        _, c = _expect(data, b, stop, 0x04, "community")
        _, p, pend = read_tlv(data, c, stop)
        x, y = _expect(data, p, pend, 0x02, "request-id")
    else:
        raise BerError(f"SNMP version field {version} is not v1, v2c or v3")
    return decode_int_content(bytes(data[x:y]))


def is_framed(data: bytes) -> bool:
    """True when ``data`` is one SEQUENCE spanning it exactly, starting with an SNMP version
    (0, 1 or 3): a cheap first test that drops random bytes and cut datagrams."""
    try:
        start, stop = _expect(data, 0, len(data), 0x30, "message SEQUENCE")
        a, b = _expect(data, start, stop, 0x02, "version")
        return stop == len(data) and decode_int_content(bytes(data[a:b])) in (0, 1, 3)
    except BerError:
        return False


def peek_version(data: bytes) -> int:
    """The version field of any SNMP message (0 = v1, 1 = v2c, 3 = v3)."""
    start, stop = _expect(data, 0, len(data), 0x30, "message SEQUENCE")
    a, b = _expect(data, start, stop, 0x02, "version")
    return decode_int_content(bytes(data[a:b]))


__all__ = [
    "END_OF_MIB_VIEW",
    "GET",
    "GETBULK",
    "GETNEXT",
    "MAX_REQUEST_ID",
    "MIN_REQUEST_ID",
    "NO_SUCH_INSTANCE",
    "NO_SUCH_OBJECT",
    "REPORT",
    "RESPONSE",
    "SET",
    "BerError",
    "Message",
    "RequestTemplate",
    "decode_int_content",
    "decode_message",
    "decode_oid_content",
    "decode_value",
    "encode_int",
    "encode_length",
    "encode_message",
    "encode_oid_content",
    "encode_value",
    "encode_varbinds",
    "is_framed",
    "message_id",
    "peek_version",
    "read_tlv",
    "tlv",
    "v3_message_id",
]

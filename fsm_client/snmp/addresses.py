"""How targets are written, and which addresses SNMP may be sent to.

A target is one host (``10.0.0.5``, ``printer.example.com:1161``, ``[2001:db8::5]:161``)
or a range (``10.0.0.0/24``, ``10.0.0.10-50``, ``10.0.0.250-10.0.1.20``). Requests go to
unicast addresses only: naming a broadcast, multicast, "this network" (``0.0.0.0/8``) or
reserved (``240.0.0.0/4``) address, or a range holding no other, is an error before any
packet is sent, and so is a number that is not a dotted quad (``999.1.1.1``; ``10.1`` or
``3232235777``, which the C resolver would quietly read as some other address).
``check_target`` checks a spec without resolving names, for the config file.

>>> parse_target("10.0.0.5:1161")
Target(host='10.0.0.5', port=1161)
>>> not_unicast(ipaddress.ip_address("255.255.255.255"))
'the broadcast address'
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from fsm_protocol.errors import ConfigError

UNICAST_HINT = "give a printer's own address, or a range of them"

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")
_DASH = re.compile(r"^(\d+\.\d+\.\d+\.\d+)-(\d+(?:\.\d+\.\d+\.\d+)?)$")
# what inet_aton reads as an address: 1 to 4 parts, each decimal, octal or 0x hex
_NUMERIC = re.compile(r"^(?:0[xX][0-9a-fA-F]*|\d+)(?:\.(?:0[xX][0-9a-fA-F]*|\d+)){0,3}\.?$")

_THIS_NET, _MULTICAST, _RESERVED = 0x00000000, 0xE0000000, 0xF0000000
_UNICAST_FIRST, _UNICAST_LAST = 0x01000000, 0xDFFFFFFF  # between 0.0.0.0/8 and 224.0.0.0/4


@dataclass(frozen=True)
class Target:
    host: str
    port: int


def blocked(n: int) -> bool:
    """0.0.0.0/8, multicast 224.0.0.0/4, reserved 240.0.0.0/4 (with 255.255.255.255)."""
    return not _UNICAST_FIRST <= n <= _UNICAST_LAST


def not_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why SNMP must not be sent to ``address`` ("the broadcast address", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_multicast:
            return "a multicast address"
        if address.is_unspecified:
            return "the unspecified address"
        mapped = address.ipv4_mapped
        return not_unicast(mapped) if mapped is not None else None
    n = int(address)
    if n == 0xFFFFFFFF:
        return "the broadcast address"
    if n >> 24 == _THIS_NET:
        return "a 'this network' address (0.0.0.0/8)"
    if n >> 28 == _MULTICAST >> 28:
        return "a multicast address"
    if n >> 28 == _RESERVED >> 28:
        return "a reserved address (240.0.0.0/4)"
    return None


def check_unicast(address: str, spec: str) -> None:
    """ConfigError unless ``address`` (an IP address) may be sent SNMP; ``spec`` is quoted."""
    reason = not_unicast(ipaddress.ip_address(address))
    if reason is not None:
        raise ConfigError(
            f"target {spec!r} is {reason}, not a device: fsm-client sends unicast only", hint=UNICAST_HINT
        )


def check_host(host: str, spec: str, *, unicast: bool = True) -> None:
    """ConfigError for a host that looks like a number but is not a dotted-quad address,
    and (with ``unicast``) for an address SNMP must not be sent to. Names pass unresolved."""
    if _NUMERIC.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(
                f"target {spec!r}: {host!r} is not an IPv4 address",
                hint="write four numbers 0-255 separated by dots, e.g. 10.0.0.5",
            ) from None
    elif ":" not in host:
        return  # a host name: resolved when it is read
    if unicast:
        check_unicast(host, spec)


def parse_target(spec: str, *, default_port: int = 161) -> Target:
    """``host``, ``host:port`` or ``[v6]:port`` to a Target; ConfigError names a bad one
    (see the module docstring)."""
    m = _HOST_PORT.match(spec.strip())
    if not m:
        raise ConfigError(
            f"target {spec!r} is not a host, host:port or [IPv6]:port",
            hint="write e.g. 10.0.0.5, printer.example.com:1161 or [2001:db8::5]:161",
        )
    port = int(m.group("port")) if m.group("port") else default_port
    if not 0 < port < 65536:
        raise ConfigError(f"target {spec!r} has port {port}, outside 1-65535", hint="fix the port")
    host = m.group("v6") or m.group("host")
    if m.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(
                f"target {spec!r}: {host!r} is not an IPv6 address", hint="write e.g. [2001:db8::5]:161"
            ) from None
    check_host(host, spec)
    return Target(host, port)


def is_range(spec: str) -> bool:
    """True for a CIDR or ``a.b.c.d-e`` range (which discovery expands), False for one host."""
    return "/" in spec or bool(re.match(r"^\d+\.\d+\.\d+\.\d+-\d", spec))


def _ip(text: str, spec: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise ConfigError(
            f"target {spec!r}: {text!r} is not an IPv4 address",
            hint="write a.b.c.d, a.b.c.d/nn, a.b.c.d-e or a.b.c.d-a.b.c.e",
        ) from None


def spans(spec: str, *, whole: bool = False, resolve: bool = True) -> list[tuple[int, int, bool]]:
    """(first, last, skip .0/.255) ranges of one spec; host names resolve to one address
    (with ``resolve``; else a name gives no span). ``whole`` keeps a CIDR block's network
    and broadcast addresses (for exclusions)."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty target", hint="remove the empty entry")
    if "/" in spec:
        try:
            net = ipaddress.IPv4Network(spec, strict=False)
        except ValueError:
            raise ConfigError(
                f"target {spec!r} is not an IPv4 CIDR block", hint="write e.g. 10.0.0.0/24"
            ) from None
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.prefixlen < 31 and not whole:  # network and broadcast addresses are never probed
            first, last = first + 1, last - 1
        return [(first, last, False)]
    m = _DASH.match(spec)
    if m:
        first = _ip(m.group(1), spec)
        end = m.group(2)
        if "." in end:
            last = _ip(end, spec)
        else:
            if int(end) > 255:
                raise ConfigError(
                    f"target {spec!r}: {end} is not an octet", hint="write a.b.c.d-e with e <= 255"
                )
            last = (first & 0xFFFFFF00) | int(end)
        if last < first:
            raise ConfigError(f"target {spec!r} ends before it starts", hint="write the lower address first")
        # The netmask is unknown: .0 and .255 are likely network/broadcast addresses.
        return [(first, last, True)]
    check_host(spec, spec, unicast=False)
    try:
        return [(int(ipaddress.IPv4Address(spec)),) * 2 + (False,)]
    except ValueError:
        pass
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(spec, None, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise ConfigError(
            f"target {spec!r} is not an address or range, and no host of that name resolves",
            hint="check the spelling, or give the IP address",
        ) from None
    n = int(ipaddress.IPv4Address(infos[0][4][0]))
    return [(n, n, False)]


def has_unicast(first: int, last: int, skip_edges: bool) -> bool:
    """True when a span holds an address discovery probes (see ``blocked``)."""
    lo, hi = max(first, _UNICAST_FIRST), min(last, _UNICAST_LAST)
    if lo > hi:
        return False
    return not skip_edges or any((n & 0xFF) not in (0, 255) for n in range(lo, min(hi, lo + 2) + 1))


def check_span(spec: str, first: int, last: int, skip_edges: bool) -> None:
    """ConfigError when a span of ``spec`` holds no address discovery would probe."""
    if has_unicast(first, last, skip_edges):
        return
    if first == last:
        check_unicast(socket.inet_ntoa(first.to_bytes(4, "big")), spec)
    raise ConfigError(
        f"target {spec!r} holds only network, broadcast, multicast or reserved addresses: "
        "fsm-client sends unicast only",
        hint=UNICAST_HINT,
    )


def check_target(spec: str, *, exclude: bool = False) -> None:
    """ConfigError for a target (or, with ``exclude``, an exclusion) that is malformed or
    names no unicast address; names are not resolved."""
    if exclude:
        spans(spec, whole=True, resolve=False)
        return
    if is_range(spec):
        for first, last, skip_edges in spans(spec):
            check_span(spec, first, last, skip_edges)
        return
    parse_target(spec)


__all__ = [
    "UNICAST_HINT",
    "Target",
    "blocked",
    "check_host",
    "check_span",
    "check_target",
    "check_unicast",
    "has_unicast",
    "is_range",
    "not_unicast",
    "parse_target",
    "spans",
]

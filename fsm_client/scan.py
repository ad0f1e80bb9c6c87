"""The core of ``fsm-client scan``: read a list of targets, one Device per target.

Targets are host names or addresses, optionally with a port (``10.0.0.5:1161``,
``[2001:db8::5]:161``), or ranges (CIDR, ``a.b.c.d-e``) that the discovery sweep probes
first, so that only answering addresses are read. Each host is tried with the
credentials in order until one answers; a host that answers none still gives a Device,
with reachability "unreachable". Reads run concurrently, at most
``config.snmp.concurrency`` at a time, and one device's failure never stops the others.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path

from fsm_protocol.errors import ConfigError, FsmError
from fsm_protocol.schema import Device, utcnow

from .config import ClientConfig, Credential
from .errors import SnmpError, SnmpTimeout
from .pmd.authoring.loader import default_dirs, load_pool
from .pmd.authoring.matcher import PmdPool
from .pmd.distribution.dirs import bundle_dirs
from .reader import identify, read_identified, unreachable
from .snmp.addresses import Target, check_unicast, is_range, parse_target
from .snmp.source import SnmpSource

SourceFactory = Callable[[str, int, Credential], AbstractAsyncContextManager[SnmpSource]]


_is_range = is_range  # the daemon's name for it


def expand(specs: Sequence[str], *, default_port: int = 161) -> list[Target]:
    """The single-host targets of ``specs`` in the order given, duplicates dropped
    (ranges are swept, see ``scan``). ConfigError for a malformed spec or one that is no
    unicast address (see ``snmp.addresses``)."""
    out: dict[Target, None] = {}
    for spec in specs:
        if not is_range(spec):
            out[parse_target(spec, default_port=default_port)] = None
    return list(out)


@asynccontextmanager
async def _pysnmp_source(
    host: str, port: int, credential: Credential, *, timeout: float, retries: int
) -> AsyncIterator[SnmpSource]:
    from .snmp.session import PysnmpSource  # imported late: the reading core works without pysnmp

    source = PysnmpSource(host, credential, port=port, timeout=timeout, retries=retries)
    try:
        yield source
    finally:
        await source.aclose()


def default_pool(data_dir: Path | None = None, local_dir: Path | None = None) -> PmdPool:
    """The shipped PMD pool, then the operator's own PMDs (``local_dir``, by default
    ``<data_dir>/pmd``), whose files replace shipped ones of the same name."""
    dirs = default_dirs()
    local = local_dir if local_dir is not None else (data_dir / "pmd" if data_dir is not None else None)
    if local is not None and local.is_dir() and any(local.glob("*.toml")):
        dirs.append(local)
    dirs[1:1] = bundle_dirs(data_dir)  # the active signed bundle set: over shipped, under local
    return load_pool(dirs)


async def resolve(host: str, port: int) -> str:
    """The address to send to: ``host`` itself when it is an address, else its first
    IPv4 address (then IPv6) from the resolver. SnmpError when the name does not resolve,
    ConfigError when it resolves to an address SNMP is never sent to (broadcast, ...)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SnmpError(
            f"cannot resolve host name {host!r}: {exc}", hint="check the name, or give the printer's address"
        ) from exc
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    address = str(infos[0][4][0])
    check_unicast(address, f"{host} ({address})")
    return address


async def read_target(
    target: Target,
    *,
    credentials: Sequence[Credential],
    pool: PmdPool,
    open_source: SourceFactory,
    now: datetime | None = None,
    status_only: bool = False,
) -> Device:
    """Resolve the target, try each credential in order, and read the device with the first
    that answers (only what a status poll needs with ``status_only``). The Device's ``ip`` is
    the address that was read."""
    now = now or utcnow()
    failures: list[str] = []
    address = await resolve(target.host, target.port)
    for cred in credentials:
        async with open_source(address, target.port, cred) as source:
            try:
                system = await identify(source)
            except SnmpTimeout as exc:
                failures.append(f"{cred.name}: {exc.message}")
                continue
            except SnmpError as exc:
                failures.append(f"{cred.name}: {exc.message}")
                continue
            if not system:
                failures.append(f"{cred.name}: answered without sysDescr/sysObjectID")
                continue
            device = await read_identified(source, pool, system, ip=address, now=now, status_only=status_only)
            if len(credentials) > 1:
                device.warnings.insert(0, f"read with credential {cred.name!r}")
            return device
    return unreachable(
        address, "no answer: " + "; ".join(failures) if failures else "no credentials", now=now
    )


async def scan(
    targets: Sequence[str],
    *,
    config: ClientConfig,
    pool: PmdPool,
    credentials: Sequence[Credential] | None = None,
    open_source: SourceFactory | None = None,
    now: datetime | None = None,
    exclude: Sequence[str] = (),
    status_only: bool = False,
) -> list[Device]:
    """Read every target: one Device per host target (in the order given, "unreachable"
    when it never answers), then one per address of the range targets that answered the
    discovery sweep (silent addresses of a range are not devices). Addresses in ``exclude``
    (the same forms as targets) are neither probed nor read. ``status_only``: see read_target."""
    creds = list(credentials) if credentials else list(config.credentials)
    if not creds:
        raise ConfigError(
            "no SNMP credentials to try", hint="add a [[credentials]] entry to the config or pass --community"
        )
    snmp = config.snmp
    if open_source is None:

        def open_source(host: str, port: int, cred: Credential) -> AbstractAsyncContextManager[SnmpSource]:
            return _pysnmp_source(host, port, cred, timeout=snmp.timeout, retries=snmp.retries)

    from .snmp.discovery import expand_targets, sweep

    excluded = set(expand_targets(exclude)) if exclude else set()
    hosts = [t for t in expand(targets, default_port=snmp.port) if t.host not in excluded]
    work: list[tuple[Target, list[Credential]]] = [(t, creds) for t in hosts]
    ranges = [spec for spec in targets if is_range(spec)]
    if ranges:
        seen = {t for t, _ in work}
        for found in await sweep(
            ranges,
            credentials=creds,
            port=snmp.port,
            timeout=snmp.timeout,
            retries=snmp.retries,
            rate=snmp.discovery_rate,
            exclude=exclude,
        ):
            target = Target(found.ip, found.port)
            if target not in seen:
                seen.add(target)
                # the credential that answered the sweep first, the others after it
                work.append((target, sorted(creds, key=lambda c: c.name != found.credential)))
    gate = asyncio.Semaphore(max(1, snmp.concurrency))

    async def one(t: Target, cs: list[Credential]) -> Device:
        async with gate:
            assert open_source is not None
            try:
                return await read_target(
                    t, credentials=cs, pool=pool, open_source=open_source, now=now, status_only=status_only
                )
            except FsmError as exc:  # one device's failure never stops the scan of the others
                return unreachable(t.host, f"{type(exc).__name__}: {exc.message}", now=now)

    return list(await asyncio.gather(*(one(t, cs) for t, cs in work)))


__all__ = [
    "SourceFactory",
    "Target",
    "default_pool",
    "expand",
    "is_range",
    "parse_target",
    "read_target",
    "resolve",
    "scan",
]

"""PysnmpSource against snmpsim serving real printer walks: values, batching, walks, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fsm_client.config import Credential
from fsm_client.errors import SnmpAuthError, SnmpProtocolError, SnmpTimeout
from fsm_client.snmp.session import INDICATION_ERRORS, PysnmpSource, auth_data, to_value, translate_indication
from fsm_client.snmp.snmpsim import Snmpsim, free_udp_port
from fsm_client.snmp.source import RecordingSource, SnmpSource, SnmpValue, walk_many
from fsm_common.configfile import Secret
from fsm_devtools.fixtures.snmp import community_credential

HP = "hp-color-laserjet-m452nw"
SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
SUPPLIES = "1.3.6.1.2.1.43.11.1.1"


@pytest.fixture
def hp_recording(snmp_walks_dir) -> RecordingSource:  # type: ignore[no-untyped-def]
    return RecordingSource.from_file(snmp_walks_dir / HP / "device.snmprec")


def source(sim: Snmpsim, cred: Credential, **kw: object) -> PysnmpSource:
    return PysnmpSource("127.0.0.1", cred, port=sim.port, **kw)  # type: ignore[arg-type]


def test_pysnmp_source_is_an_snmp_source(snmpsim_walks: Snmpsim) -> None:
    assert isinstance(source(snmpsim_walks, community_credential("x")), SnmpSource)


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_get_returns_typed_values_like_the_recording(
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    hp_recording: RecordingSource,
    version: str,
) -> None:
    oids = [SYS_DESCR, SYS_OBJECT_ID, SYS_NAME, "1.3.6.1.2.1.2.2.1.10.2", "1.3.6.1.2.1.25.3.2.1.3.1"]
    async with source(snmpsim_walks, walk_credential(HP, version)) as src:
        got = await src.get(oids)
    assert got == await hp_recording.get(oids)
    assert got[SYS_OBJECT_ID] == SnmpValue("oid", "1.3.6.1.4.1.11.2.3.9.1")
    assert got["1.3.6.1.2.1.2.2.1.10.2"] == SnmpValue("counter32", 3137414559)


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_missing_oids_are_absent_not_errors(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], version: str
) -> None:
    # SNMPv1 answers noSuchName for the whole PDU: the source drops that OID and asks again.
    async with source(snmpsim_walks, walk_credential(HP, version)) as src:
        got = await src.get(["1.3.6.1.2.1.99.1.0", SYS_NAME, "1.3.6.1.4.1.99999.1.0"])
        assert list(got) == [SYS_NAME]
        assert src.warnings == []


async def test_large_gets_are_split_into_batches(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], hp_recording: RecordingSource
) -> None:
    rows = await hp_recording.walk("1.3.6.1.2.1")
    oids = [oid for oid, _ in rows][:95]
    async with source(snmpsim_walks, walk_credential(HP), get_batch=10) as src:
        got = await src.get(oids)
    assert got == dict(rows[:95])


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_walk_reads_the_supplies_table_in_order(
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    hp_recording: RecordingSource,
    version: str,
) -> None:
    async with source(snmpsim_walks, walk_credential(HP, version), bulk_size=5) as src:
        rows = await src.walk(SUPPLIES)
    assert rows == await hp_recording.walk(SUPPLIES)
    assert len(rows) > 10


async def test_walk_stops_at_max_rows(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], hp_recording: RecordingSource
) -> None:
    async with source(snmpsim_walks, walk_credential(HP)) as src:
        rows = await src.walk(SUPPLIES, max_rows=7)
    assert rows == (await hp_recording.walk(SUPPLIES))[:7]


async def test_walk_of_an_absent_subtree_is_empty(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential]
) -> None:
    async with source(snmpsim_walks, walk_credential(HP)) as src:
        assert await src.walk("1.3.6.1.4.1.99999") == []
        assert await src.walk("1.3.6.1.9") == []  # past the last OID served


async def test_wrong_community_is_unreachable(snmpsim_walks: Snmpsim) -> None:
    src = source(snmpsim_walks, community_credential("no-such-walk"), timeout=0.3, retries=1)
    with pytest.raises(SnmpTimeout) as info:
        await src.get([SYS_DESCR])
    assert f"127.0.0.1:{snmpsim_walks.port}" in info.value.message
    assert "2 attempts" in info.value.message
    assert src.reachability == "unreachable"


async def test_silent_port_raises_timeout_for_walks_too() -> None:
    src = PysnmpSource(
        "127.0.0.1", community_credential("public"), port=free_udp_port(), timeout=0.2, retries=0
    )
    with pytest.raises(SnmpTimeout):
        await src.walk(SUPPLIES)


async def test_devices_are_read_concurrently_on_one_engine(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential]
) -> None:
    async def read(host: str) -> dict[str, SnmpValue]:
        async with PysnmpSource(host, walk_credential(HP), port=snmpsim_walks.port) as src:
            return await src.get([SYS_OBJECT_ID])

    results = await asyncio.gather(*(read(h) for h in snmpsim_walks.endpoints))
    assert all(r == {SYS_OBJECT_ID: SnmpValue("oid", "1.3.6.1.4.1.11.2.3.9.1")} for r in results)


def test_v3_credential_needs_auth_before_privacy() -> None:
    cred = Credential(name="v3", version="3", user="u", priv_protocol="AES", priv_key=Secret("privpass123"))
    with pytest.raises(SnmpAuthError, match="without auth_protocol"):
        auth_data(cred)


def test_v3_keys_shorter_than_eight_characters_are_refused() -> None:
    cred = Credential(name="v3", version="3", user="u", auth_protocol="SHA-256", auth_key=Secret("short"))
    with pytest.raises(SnmpAuthError, match="auth_key is shorter than 8"):
        auth_data(cred)


def test_pysnmp_values_map_to_snmp_values() -> None:
    from pysnmp.proto import rfc1902, rfc1905

    assert to_value(rfc1902.Integer32(-3)) == SnmpValue("integer", -3)
    assert to_value(rfc1902.OctetString(b"\x00\x01")) == SnmpValue("octets", b"\x00\x01")
    assert to_value(rfc1902.ObjectIdentifier("1.3.6.1.4.1.11")) == SnmpValue("oid", "1.3.6.1.4.1.11")
    assert to_value(rfc1902.IpAddress("10.1.2.3")) == SnmpValue("ipaddress", "10.1.2.3")
    assert to_value(rfc1902.Counter32(4294967295)) == SnmpValue("counter32", 4294967295)
    assert to_value(rfc1902.Gauge32(7)) == SnmpValue("gauge32", 7)
    assert to_value(rfc1902.Unsigned32(7)) == SnmpValue("gauge32", 7)
    assert to_value(rfc1902.TimeTicks(100)) == SnmpValue("timeticks", 100)
    assert to_value(rfc1902.Counter64(2**40)) == SnmpValue("counter64", 2**40)
    assert to_value(rfc1902.Opaque(b"x")) == SnmpValue("opaque", b"x")
    assert to_value(rfc1902.Bits(b"\x80")) == SnmpValue("octets", b"\x80")
    assert to_value(rfc1905.noSuchObject) is None
    assert to_value(rfc1905.noSuchInstance) is None
    assert to_value(rfc1905.endOfMibView) is None


def _indication_classes(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_indication_classes(sub)]
    return out


def test_every_pysnmp_error_indication_is_mapped_to_an_snmp_error() -> None:
    from pysnmp.proto import errind

    missing = [c.__name__ for c in _indication_classes(errind.ErrorIndication) if c not in INDICATION_ERRORS]
    assert missing == []


@pytest.mark.parametrize(
    ("indication", "error"),
    [
        ("requestTimedOut", SnmpTimeout),
        ("wrongDigest", SnmpAuthError),
        ("unknownUserName", SnmpAuthError),
        ("notInTimeWindow", SnmpAuthError),
        ("parseError", SnmpProtocolError),
        ("oidNotIncreasing", SnmpProtocolError),
    ],
)
def test_indications_become_errors_naming_device_and_credential(indication: str, error: type) -> None:
    from pysnmp.proto import errind

    cred = Credential(name="office", version="3", user="ops")
    got = translate_indication(getattr(errind, indication), who="192.0.2.7:161", credential=cred)
    assert type(got) is error and "192.0.2.7:161" in got.message and got.hint
    if error is SnmpAuthError:
        assert "'office'" in got.message and "'ops'" in got.message


READER_TABLES = [
    "1.3.6.1.2.1.2.2.1.3",
    "1.3.6.1.2.1.2.2.1.6",
    "1.3.6.1.2.1.43.13.4.1.9",
    "1.3.6.1.2.1.43.8.2.1.2",
    SUPPLIES,
    "1.3.6.1.2.1.43.12.1.1.4",
    "1.3.6.1.2.1.25.3.5.1",
    "1.3.6.1.2.1.25.3.2.1.5",
    "1.3.6.1.2.1.43.16.5.1.2",
    "1.3.6.1.2.1.43.18.1.1",
    "1.3.6.1.4.1.99999",
    "1.3.6.1.9",
]


@pytest.mark.parametrize("version", ["1", "2c"])
@pytest.mark.parametrize("walk", ["hp-color-laserjet-m452nw", "sharp-mx-3570n", "ricoh-aficio-mp-c3002"])
async def test_walk_many_reads_each_table_as_walk_does(
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    snmp_walks_dir: Path,
    version: str,
    walk: str,
) -> None:
    recording = RecordingSource.from_file(snmp_walks_dir / walk / "device.snmprec")
    async with source(snmpsim_walks, walk_credential(walk, version)) as src:
        got = await src.walk_many(READER_TABLES)
    assert got == {t: await recording.walk(t) for t in READER_TABLES}
    assert any(got.values())


async def test_walk_many_takes_one_round_trip_for_many_short_tables(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential]
) -> None:
    requests = 0

    class Counting(PysnmpSource):
        async def _request(self, *args, **kw):  # type: ignore[no-untyped-def]
            nonlocal requests
            requests += 1
            return await super()._request(*args, **kw)

    absent = [f"1.3.6.1.4.1.{n}" for n in range(99990, 99999)]
    async with Counting("127.0.0.1", walk_credential(HP), port=snmpsim_walks.port) as src:
        got = await src.walk_many(absent)
    assert got == {root: [] for root in absent} and requests == 1


async def test_walk_many_honours_each_tables_row_limit(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], hp_recording: RecordingSource
) -> None:
    async with source(snmpsim_walks, walk_credential(HP)) as src:
        got = await src.walk_many({SUPPLIES: 5, "1.3.6.1.2.1.2.2.1": 40})
    assert got[SUPPLIES] == (await hp_recording.walk(SUPPLIES))[:5]
    assert got["1.3.6.1.2.1.2.2.1"] == (await hp_recording.walk("1.3.6.1.2.1.2.2.1"))[:40]


async def test_walk_many_helper_falls_back_to_walk_for_plain_sources(hp_recording: RecordingSource) -> None:
    class WalkOnly:
        async def get(self, oids):  # type: ignore[no-untyped-def]
            return await hp_recording.get(oids)

        async def walk(self, oid, *, max_rows=10_000):  # type: ignore[no-untyped-def]
            return await hp_recording.walk(oid, max_rows=max_rows)

    got = await walk_many(WalkOnly(), {SUPPLIES: 3, "1.3.6.1.2.1.1": 100})  # type: ignore[arg-type]
    assert got == {
        SUPPLIES: (await hp_recording.walk(SUPPLIES))[:3],
        "1.3.6.1.2.1.1": await hp_recording.walk("1.3.6.1.2.1.1"),
    }

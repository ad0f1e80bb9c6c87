"""A device that answers garbage yields the fields it can plus warnings, and never stops
the scan. The hostile agent is real UDP on loopback; its community picks the misbehaviour."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator

import pytest

from fsm_client.config import ClientConfig, SnmpSection
from fsm_client.errors import SnmpTimeout
from fsm_client.reader import device_json
from fsm_client.scan import default_pool, scan
from fsm_client.snmp.discovery import sweep
from fsm_client.snmp.session import MAX_VALUE_BYTES, PysnmpSource
from fsm_client.snmp.snmpsim import Snmpsim, free_udp_port
from fsm_client.snmp.source import SnmpValue
from fsm_devtools.fixtures.snmp import community_credential
from fsm_devtools.peers.hostile import HUGE, SUPPLY, HostileAgent

SYS_DESCR, SYS_OBJECT_ID, SERIAL = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.43.5.1.1.17.1"
PAGES = "1.3.6.1.2.1.43.10.2.1.4.1.1"


def source(agent: HostileAgent, community: str, version: str = "2c", **kw: object) -> PysnmpSource:
    opts: dict[str, object] = {"timeout": 0.3, "retries": 0, **kw}
    return PysnmpSource(agent.host, community_credential(community, version), port=agent.port, **opts)  # type: ignore[arg-type]


async def test_a_well_behaved_agent_reads_cleanly(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "public") as src:
        got = await src.get([SYS_DESCR, SERIAL, PAGES])
        rows = await src.walk(SUPPLY)
    assert got[SERIAL] == SnmpValue("octets", b"HOSTILE123") and got[PAGES] == SnmpValue("counter32", 4242)
    assert len(rows) == 24 and src.warnings == []


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_garbage_wrong_ids_and_truncated_copies_before_the_answer_are_ignored(
    hostile_agent: HostileAgent, version: str
) -> None:
    async with source(hostile_agent, "garbage-first", version) as src:
        got = await src.get([SYS_DESCR, SERIAL])
        rows = await src.walk(SUPPLY)
    assert got == {
        SYS_DESCR: SnmpValue("octets", b"Hostile Printer 1.0"),
        SERIAL: SnmpValue("octets", b"HOSTILE123"),
    }
    assert len(rows) == 24
    # random bytes, a truncated copy and an overrunning length per answer; the wrong id is SNMP
    assert src.undecodable >= 3 * 2
    assert any("undecodable datagram(s)" in w for w in src.warnings)


@pytest.mark.parametrize("mode", ["malformed", "truncated", "wrong-id"])
async def test_an_agent_that_only_answers_garbage_is_unreachable(
    hostile_agent: HostileAgent, mode: str
) -> None:
    src = source(hostile_agent, f"{mode}/only")
    with pytest.raises(SnmpTimeout) as info:
        await src.get([SYS_DESCR])
    if mode != "wrong-id":  # a wrong id is well-formed SNMP, just not ours
        assert "undecodable" in info.value.message
    assert hostile_agent.requests[f"{mode}/only"] == 1
    assert src.reachability == "unreachable"


async def test_a_walk_that_turns_to_garbage_keeps_what_was_read_then_fails_fast(
    hostile_agent: HostileAgent,
) -> None:
    src = source(hostile_agent, "walk-malformed")
    assert SYS_DESCR in await src.get([SYS_DESCR])
    with pytest.raises(SnmpTimeout):
        await src.walk(SUPPLY)
    assert src.lost and src.reachability == "partial"
    assert any(w.startswith("unreachable mid-read") for w in src.warnings)
    started = time.monotonic()
    with pytest.raises(SnmpTimeout, match="stopped answering earlier"):
        await src.get([SERIAL])
    assert time.monotonic() - started < 0.1  # no second wait for a device already gone


async def test_a_device_that_dies_mid_walk_keeps_the_rows_already_read(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "dies-after-2/walk", bulk_size=5) as src:
        rows = await src.walk(SUPPLY)
    assert [oid for oid, _ in rows] == [f"{SUPPLY}.4.1.{i}" for i in range(1, 5)] + [
        f"{SUPPLY}.5.1.{i}" for i in range(1, 5)
    ] + [f"{SUPPLY}.6.1.1", f"{SUPPLY}.6.1.2"]
    assert src.reachability == "partial"
    assert any("unreachable mid-read" in w and "walk of" in w for w in src.warnings)


async def test_wrong_types_come_back_typed_as_sent(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "wrong-types") as src:
        got = await src.get([SYS_DESCR, SYS_OBJECT_ID, PAGES, SERIAL, f"{SUPPLY}.8.1.1", f"{SUPPLY}.6.1.2"])
    assert got[SYS_DESCR] == SnmpValue("integer", 7)
    assert got[SYS_OBJECT_ID] == SnmpValue("octets", b"1.3.6.1.4.1.99999.1")
    assert got[PAGES] == SnmpValue("octets", b"n/a")
    assert got[SERIAL] == SnmpValue("counter64", 2**63)
    assert got[f"{SUPPLY}.8.1.1"] == SnmpValue("ipaddress", "10.0.0.1")
    assert got[f"{SUPPLY}.6.1.2"] == SnmpValue("null", None)


async def test_64_kb_strings_are_truncated_with_a_warning(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "huge") as src:
        # together the answer would not fit a datagram: the agent says tooBig, the source splits
        got = await src.get([SYS_DESCR, SERIAL, PAGES])
        rows = await src.walk(f"{SUPPLY}.6")
    assert got[SYS_DESCR] == SnmpValue("octets", b"A" * MAX_VALUE_BYTES)
    assert got[PAGES] == SnmpValue("counter32", 4242)
    assert [len(v.value) for _, v in rows] == [MAX_VALUE_BYTES] * 4  # type: ignore[arg-type]
    assert sum(f"is {HUGE} bytes; truncated" in w for w in src.warnings) == 6


async def test_a_looping_table_stops_with_a_warning(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "loop") as src:
        rows = await src.walk(SUPPLY)
    assert rows[-1][0] == f"{SUPPLY}.6.1.3" and len(rows) == 11
    assert any("not increasing" in w for w in src.warnings)


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_an_endless_table_stops_at_max_rows(hostile_agent: HostileAgent, version: str) -> None:
    async with source(hostile_agent, "endless", version) as src:
        rows = await src.walk(SUPPLY, max_rows=300)
    assert len(rows) == 300 and rows[-1] == (f"{SUPPLY}.6.1.300", SnmpValue("octets", b"row 300"))


async def test_varbinds_that_were_not_asked_are_dropped(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "stray") as src:
        got = await src.get([SYS_DESCR])
    assert list(got) == [SYS_DESCR]
    assert any("did not ask for" in w for w in src.warnings)


async def test_gen_err_on_a_large_get_is_retried_in_smaller_batches(hostile_agent: HostileAgent) -> None:
    oids = [f"{SUPPLY}.9.1.{i}" for i in range(1, 5)] + [f"{SUPPLY}.8.1.{i}" for i in range(1, 5)]
    async with source(hostile_agent, "gen-err") as src:
        got = await src.get(oids)
    assert sorted(got) == sorted(oids) and src.warnings == []


async def test_the_scan_finishes_with_warnings_whatever_the_agents_send(hostile_agent: HostileAgent) -> None:
    config = ClientConfig(snmp=SnmpSection(timeout=0.3, retries=0))
    pool = default_pool()
    modes = [
        "public",
        "garbage-first",
        "malformed",
        "walk-malformed",
        "wrong-types",
        "huge",
        "loop",
        "endless",
        "stray",
        "gen-err",
        "dies-after-1/scan",
    ]
    target = f"{hostile_agent.host}:{hostile_agent.port}"

    async def one(mode: str):  # type: ignore[no-untyped-def]
        return mode, (
            await scan(
                [target], config=config, pool=pool, credentials=[community_credential(mode, name=mode)]
            )
        )[0]

    devices = dict(await asyncio.wait_for(asyncio.gather(*(one(m) for m in modes)), 60))
    assert devices["public"].reachability == "ok" and devices["public"].serial == "HOSTILE123"
    assert devices["garbage-first"].serial == "HOSTILE123"
    assert devices["malformed"].reachability == "unreachable"
    assert devices["walk-malformed"].reachability == "partial"
    assert devices["dies-after-1/scan"].reachability == "partial"
    for mode in ("wrong-types", "huge", "loop", "stray", "endless", "walk-malformed", "dies-after-1/scan"):
        assert devices[mode].warnings, mode
    assert any("truncated" in w for w in devices["huge"].warnings)
    assert any("not increasing" in w for w in devices["loop"].warnings)


async def test_discovery_ignores_garbage_and_finds_the_credential_that_answers(
    hostile_agent: HostileAgent,
) -> None:
    creds = [
        community_credential(c, name=c)
        for c in ("malformed/sweep", "wrong-id/sweep", "truncated/sweep", "garbage-first/sweep")
    ]
    found = await sweep(
        [hostile_agent.host], credentials=creds, port=hostile_agent.port, timeout=0.3, retries=1, rate=0
    )
    assert [(f.credential, f.sys_descr, f.sys_object_id) for f in found] == [
        ("garbage-first/sweep", "Hostile Printer 1.0", "1.3.6.1.4.1.99999.1")
    ]
    assert hostile_agent.requests["malformed/sweep"] == 2  # the first probe and its retry


async def test_walk_many_stops_a_looping_table_and_keeps_the_others(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "loop/many") as src:
        got = await src.walk_many([SUPPLY, "1.3.6.1.2.1.1", "1.3.6.1.2.1.43.5"])
    assert len(got[SUPPLY]) == 11
    assert got["1.3.6.1.2.1.43.5"] == [(SERIAL, SnmpValue("octets", b"HOSTILE123"))]
    assert [oid for oid, _ in got["1.3.6.1.2.1.1"]] == [f"1.3.6.1.2.1.1.{i}.0" for i in (1, 2, 3, 5)]
    assert sum("not increasing" in w for w in src.warnings) == 1


async def test_walk_many_bounds_an_endless_table(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "endless/many") as src:
        got = await src.walk_many({SUPPLY: 100, "1.3.6.1.2.1.1": 10})
    assert len(got[SUPPLY]) == 100 and len(got["1.3.6.1.2.1.1"]) == 4


async def test_walk_many_keeps_what_was_read_when_the_device_dies(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "dies-after-1/many") as src:
        got = await src.walk_many([SUPPLY, "1.3.6.1.2.1.1"])
    assert len(got[SUPPLY]) == 10 and len(got["1.3.6.1.2.1.1"]) == 4  # the first GETBULK's rows
    assert src.reachability == "partial"
    assert any(w.startswith("unreachable mid-read") and "walk of 2 tables" in w for w in src.warnings)


async def test_walk_many_narrows_its_requests_when_answers_are_too_big(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "huge/many") as src:
        got = await src.walk_many([f"{SUPPLY}.6", "1.3.6.1.2.1.43.5"])
    assert [len(v.value) for _, v in got[f"{SUPPLY}.6"]] == [MAX_VALUE_BYTES] * 4  # type: ignore[arg-type]
    assert got["1.3.6.1.2.1.43.5"] == [(SERIAL, SnmpValue("octets", b"A" * MAX_VALUE_BYTES))]


async def test_a_jump_back_out_of_the_subtree_is_a_loop_not_the_end(hostile_agent: HostileAgent) -> None:
    async with source(hostile_agent, "loop/column") as src:
        rows = await src.walk(f"{SUPPLY}.9")  # the agent answers the table's first row instead
    assert rows == []
    assert any("not increasing" in w and f"{SUPPLY}.4.1.1" in w for w in src.warnings)


# -- answers that belong to no request to their sender ---------------------------------------

SHIFTED_HOST, SILENT_HOST = "127.0.0.30", "127.0.0.31"
PRINTERS = {"127.0.0.2": "brother-hl-5370dw", "127.0.0.3": "kyocera-fs-1028mfp"}


@pytest.fixture(scope="module")
def shifted_agent() -> Iterator[HostileAgent]:
    """A hostile agent on its own address, so that every device of a scan has its own."""
    with HostileAgent(host=SHIFTED_HOST) as agent:
        yield agent


async def test_an_agent_answering_with_a_shifted_id_is_unreachable_with_a_warning(
    shifted_agent: HostileAgent,
) -> None:
    src = PysnmpSource(
        shifted_agent.host,
        community_credential("shifted-id/alone"),
        port=shifted_agent.port,
        timeout=0.3,
        retries=1,
    )
    with pytest.raises(SnmpTimeout, match=r"2 answer\(s\) that matched no request sent to it"):
        await src.get([SYS_DESCR])
    assert src.reachability == "unreachable" and src.misdirected == 2


async def test_an_answer_from_another_port_than_the_one_asked_is_dropped(hostile_agent: HostileAgent) -> None:
    src = source(hostile_agent, "other-port/only")
    with pytest.raises(SnmpTimeout, match="matched no request sent to it"):
        await src.get([SYS_DESCR])
    assert hostile_agent.requests["other-port/only"] == 1 and src.reachability == "unreachable"


async def test_request_ids_are_not_predictable_from_the_last_one(shifted_agent: HostileAgent) -> None:
    # Anyone who sees one request must not be able to tell the id of the next (to this
    # device or another): consecutive requests carry unrelated ids.
    async with PysnmpSource(
        shifted_agent.host,
        community_credential("public/ids"),
        port=shifted_agent.port,
        timeout=0.3,
        retries=0,
    ) as src:
        for _ in range(20):
            await src.get([SYS_DESCR])
    ids = shifted_agent.request_ids["public/ids"]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert all(abs(b - a) > 1000 for a, b in itertools.pairwise(ids)), ids


async def test_answers_with_a_shifted_id_never_land_on_another_device_in_any_order(
    shifted_agent: HostileAgent, snmpsim_walks: Snmpsim
) -> None:
    """The shifted answer carries the id of the request sent right after it; whichever
    device that went to (a silent address, a printer) must neither take the hostile values
    nor lose its own answer."""
    config = ClientConfig(snmp=SnmpSection(timeout=0.5, retries=0))
    pool = default_pool()
    silent_port = free_udp_port(SILENT_HOST)
    targets = {
        SHIFTED_HOST: (f"{SHIFTED_HOST}:{shifted_agent.port}", community_credential("shifted-id/order")),
        SILENT_HOST: (f"{SILENT_HOST}:{silent_port}", community_credential("public")),
        **{
            ip: (f"{ip}:{snmpsim_walks.port}", community_credential(snmpsim_walks.community(walk)))
            for ip, walk in PRINTERS.items()
        },
    }

    async def read(ip: str):  # type: ignore[no-untyped-def]
        target, cred = targets[ip]
        [device] = await scan([target], config=config, pool=pool, credentials=[cred])
        return device

    alone = {ip: await read(ip) for ip in PRINTERS}
    assert all(d.reachability == "ok" and d.serial for d in alone.values())
    for order in itertools.permutations(targets):
        devices = dict(
            zip(order, await asyncio.wait_for(asyncio.gather(*(read(ip) for ip in order)), 30), strict=True)
        )
        for ip, device in devices.items():
            assert device.ip == ip, order
            if ip != SHIFTED_HOST:
                text = json.dumps(device_json(device), default=str)
                assert "HOSTILE123" not in text and "Hostile" not in text, (order, ip, text)
        for ip, baseline in alone.items():
            got = devices[ip]
            assert (got.reachability, got.manufacturer, got.model, got.serial, got.counters) == (
                baseline.reachability,
                baseline.manufacturer,
                baseline.model,
                baseline.serial,
                baseline.counters,
            ), (order, ip, got.warnings)
        assert devices[SILENT_HOST].reachability == "unreachable", order
        hostile = devices[SHIFTED_HOST]
        assert hostile.reachability == "unreachable", order
        assert "matched no request sent to it" in hostile.warnings[0], (order, hostile.warnings)


async def test_discovery_drops_answers_with_a_shifted_id_and_finds_the_printers(
    snmpsim_walks: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    # a sweep probes one port: snmpsim on 127.0.0.2-3, a shifted agent on .32 on the same port
    with HostileAgent(host="127.0.0.32", port=snmpsim_walks.port) as shifted:
        creds = [
            community_credential(snmpsim_walks.community(PRINTERS["127.0.0.2"]), name="sim"),
            community_credential("shifted-id/sweep", name="shifted"),
        ]
        for order in itertools.permutations(["127.0.0.2", "127.0.0.3", "127.0.0.32"]):
            found = await sweep(
                list(order), credentials=creds, port=snmpsim_walks.port, timeout=0.3, retries=0, rate=0
            )
            assert sorted((f.ip, f.credential) for f in found) == [("127.0.0.2", "sim"), ("127.0.0.3", "sim")]
            assert all("Hostile" not in f.sys_descr for f in found)
        assert shifted.requests["shifted-id/sweep"] == 6
    assert f"127.0.0.32:{snmpsim_walks.port} sent 1 answer(s) that matched no probe sent to it" in caplog.text

"""Every recorded printer of ../shared/snmp-walks, read from its recording, gives the
values its expected.json lists (vendor, serial, MAC, counters, supply percents)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from fsm_client.pmd.authoring.expectations import compare
from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.reader import device_json, identify, read_device, read_identified
from fsm_client.snmp.source import RecordingSource
from fsm_protocol.schema import Device

WALKS = Path(__file__).resolve().parents[3] / "shared" / "snmp-walks"
WALK_IDS = sorted(p.parent.name for p in WALKS.glob("*/expected.json")) if WALKS.is_dir() else []

pytestmark = pytest.mark.skipif(not WALK_IDS, reason="../shared/snmp-walks is not beside the repository")


@pytest.mark.parametrize("walk", WALK_IDS)
async def test_walk_reads_as_expected(pool: PmdPool, walk: str) -> None:
    expected = json.loads((WALKS / walk / "expected.json").read_text())
    dev = await read_device(RecordingSource.from_file(WALKS / walk / "device.snmprec"), pool, ip="192.0.2.1")
    bad = [c for c in compare(expected, device_json(dev)) if not c.ok]
    assert bad == []
    assert dev.warnings == []
    # the reading is a valid schema Device (what goes into a report)
    assert msgspec.json.decode(msgspec.json.encode(dev), type=Device) == dev


async def test_brother_toner_reporting_some_remaining_has_no_percent(pool: PmdPool) -> None:
    dev = await read_device(
        RecordingSource.from_file(WALKS / "brother-hl-5370dw" / "device.snmprec"), pool, ip="192.0.2.1"
    )
    toner = next(s for s in dev.supplies if s.index == 2)
    assert (toner.level, toner.max, toner.percent, toner.state) == (-3, -2, None, "some_remaining")
    assert (dev.manufacturer, dev.model, dev.serial) == ("Brother", "HL-5370DW", "B9J154306")


async def test_konica_counters_come_from_the_vendor_table(pool: PmdPool) -> None:
    dev = await read_device(
        RecordingSource.from_file(WALKS / "konica-minolta-bizhub-c250i" / "device.snmprec"),
        pool,
        ip="192.0.2.1",
    )
    assert dev.counters["print_total"] == 22876 + 6711
    assert dev.sources["counters.print_black"] == "1.3.6.1.4.1.18334.1.1.1.5.7.2.2.1.5.1.2"
    assert dev.sources["counters.print_total"] == (
        "1.3.6.1.4.1.18334.1.1.1.5.7.2.2.1.5.1.2,1.3.6.1.4.1.18334.1.1.1.5.7.2.2.1.5.2.2"
    )


async def test_capabilities_follow_the_standard_tables_and_counters(pool: PmdPool) -> None:
    hp = await read_device(
        RecordingSource.from_file(WALKS / "hp-laserjet-mfp-m130nw" / "device.snmprec"), pool, ip="192.0.2.1"
    )
    assert (hp.capabilities.color, hp.capabilities.scan) == (False, True)
    sharp = await read_device(
        RecordingSource.from_file(WALKS / "sharp-mx-3570n" / "device.snmprec"), pool, ip="192.0.2.1"
    )
    assert (sharp.capabilities.color, sharp.capabilities.duplex, sharp.capabilities.scan) == (
        True,
        True,
        True,
    )


class CountingSource(RecordingSource):
    """A recording that counts the varbinds it was asked for (GET OIDs and walked rows)."""

    asked = 0

    async def get(self, oids):  # type: ignore[no-untyped-def]
        self.asked += len(oids)
        return await super().get(oids)

    async def walk(self, oid, *, max_rows=10_000):  # type: ignore[no-untyped-def]
        rows = await super().walk(oid, max_rows=max_rows)
        self.asked += len(rows) + 1
        return rows


@pytest.mark.parametrize("walk", WALK_IDS)
async def test_a_status_read_agrees_with_the_full_read_and_asks_for_less(pool: PmdPool, walk: str) -> None:
    """What a status poll reads (identity to follow the device, status, alerts) is what the full
    read says, for every recorded model; counters and supplies are left for the full read."""
    path = WALKS / walk / "device.snmprec"
    full_source, poll_source = CountingSource.from_file(path), CountingSource.from_file(path)
    full = await read_device(full_source, pool, ip="192.0.2.1")
    system = await identify(poll_source)
    poll = await read_identified(poll_source, pool, system, ip="192.0.2.1", status_only=True)
    assert (poll.manufacturer, poll.serial, poll.pmd) == (full.manufacturer, full.serial, full.pmd)
    assert (poll.status, poll.alerts) == (msgspec.structs.replace(full.status, console=None), full.alerts)
    assert (poll.counters, poll.supplies, poll.warnings) == ({}, [], [])
    assert poll_source.asked < full_source.asked

"""Reading a device through a PMD: sentinels, vendor scales, status bits, alerts, garbage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from fsm_client.errors import SnmpProtocolError, SnmpTimeout
from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.reader import read_device
from fsm_client.snmp.source import RecordingSource, SnmpValue
from fsm_protocol.schema import Device

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUPPLY = "1.3.6.1.2.1.43.11.1.1"


def supplies_rec(rows: list[tuple[int, str, int, int, int]], *, unit: int | None = None) -> str:
    """snmprec lines of prtMarkerSuppliesTable rows (index, description, type, max, level)."""
    lines = []
    for idx, descr, kind, max_, level in rows:
        lines += [
            f"{SUPPLY}.5.1.{idx}|2|{kind}",
            f"{SUPPLY}.6.1.{idx}|4|{descr}",
            f"{SUPPLY}.8.1.{idx}|2|{max_}",
            f"{SUPPLY}.9.1.{idx}|2|{level}",
        ]
        if unit is not None:
            lines.append(f"{SUPPLY}.7.1.{idx}|2|{unit}")
    return "\n".join(lines)


async def read(pool: PmdPool, text: str, descr: str = "Generic Printer 1") -> Device:
    rec = f"1.3.6.1.2.1.1.1.0|4|{descr}\n1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.1\n" + text
    return await read_device(RecordingSource.from_text(rec), pool, ip="192.0.2.7", now=NOW)


@pytest.mark.parametrize(
    "level, max_, percent, state",
    [
        (50, 100, 50.0, "ok"),
        (5, 100, 5.0, "low"),
        (0, 100, 0.0, "empty"),
        (1060, 5300, 20.0, "ok"),
        (-1, 100, None, "unlimited"),
        (-2, 100, None, "unknown"),
        (-3, 100, None, "some_remaining"),
        (-3, -2, None, "some_remaining"),
        (40, -1, None, "unlimited"),
        (40, -2, None, "unknown"),
        (40, 0, None, "invalid"),
        (150, 100, 150.0, "ok"),  # above max: read as it is, with a warning (below)
    ],
)
async def test_printer_mib_sentinels_keep_their_meaning(
    pool: PmdPool, level: int, max_: int, percent: float | None, state: str
) -> None:
    dev = await read(pool, supplies_rec([(1, "Black Toner", 3, max_, level)]))
    (s,) = dev.supplies
    assert (s.level, s.max, s.percent, s.state) == (level, max_, percent, state)


@pytest.mark.parametrize(
    "max_, level, tag, warning",
    [
        (100, -7, 2, "supply 1 level: -7 is outside -3..4294967295; ignored"),
        (-7, 50, 2, "supply 1 max: -7 is outside -3..4294967295; ignored"),
        (100, 2**62, 70, "supply 1 level: 4611686018427387904 is outside -3..4294967295; ignored"),
    ],
)
async def test_a_supply_value_no_supply_can_have_is_dropped_as_invalid_with_a_warning(
    pool: PmdPool, max_: int, level: int, tag: int, warning: str
) -> None:
    """The report stays one the server loads (it refuses such values as implausible)."""
    rec = supplies_rec([(1, "Black Toner", 3, max_, 0)]).replace(
        f"{SUPPLY}.9.1.1|2|0", f"{SUPPLY}.9.1.1|{tag}|{level}"
    )
    (s,) = (await read(pool, rec)).supplies
    assert (s.percent, s.state) == (None, "invalid")
    assert {s.level, s.max}.isdisjoint({-7, 2**62})
    assert warning in (await read(pool, rec)).warnings


async def test_alert_and_uptime_numbers_out_of_range_are_dropped_with_a_warning(pool: PmdPool) -> None:
    a = "1.3.6.1.2.1.43.18.1.1"
    rec = "\n".join(
        [
            f"{a}.2.1.7|2|4",
            f"{a}.5.1.7|70|{2**40}",
            f"{a}.7.1.7|2|1104",
            f"{a}.9.1.7|70|{2**63}",
            f"1.3.6.1.2.1.1.3.0|70|{2**64 - 1}",
        ]
    )
    dev = await read(pool, rec)
    (alert,) = dev.alerts
    assert (alert.group_index, alert.time_ticks, dev.uptime_ticks) == (None, None, None)
    assert f"alert 7 group index: {2**40} is outside -2147483648..2147483647; ignored" in dev.warnings
    assert f"sysUpTime: {2**64 - 1} is outside 0..4294967295; ignored" in dev.warnings


async def test_level_above_max_is_read_as_is_with_a_warning_naming_the_supply(pool: PmdPool) -> None:
    dev = await read(pool, supplies_rec([(1, "Black Toner", 3, 100, 120), (2, "Cyan Toner", 3, 100, 105)]))
    assert [(s.percent, s.state) for s in dev.supplies] == [(120.0, "ok"), (105.0, "ok")]
    assert "supply 'Black Toner': level 120 above max 100" in dev.warnings
    assert "supply 'Cyan Toner': level 105 above max 100" in dev.warnings


async def test_level_within_max_gives_no_warning(pool: PmdPool) -> None:
    dev = await read(pool, supplies_rec([(1, "Black Toner", 3, 100, 100)]))
    assert dev.supplies[0].percent == 100.0
    assert not [w for w in dev.warnings if "above max" in w]


async def test_unit_percent_with_unknown_max_reads_as_percent(pool: PmdPool) -> None:
    dev = await read(
        pool, supplies_rec([(1, "Black Toner", 3, -2, 37), (2, "Cyan Toner", 3, -2, -3)], unit=19)
    )
    assert [(s.percent, s.state, s.unit) for s in dev.supplies] == [
        (37.0, "ok", "percent"),
        (None, "some_remaining", "percent"),
    ]


async def test_three_state_vendor_scale_is_mapped_by_the_pmd(pool: PmdPool) -> None:
    rec = supplies_rec(
        [
            (1, "Black Cartridge", 3, -2, -2),
            (2, "Cyan Cartridge", 3, -2, -3),
            (3, "Yellow Cartridge", 3, -2, 0),
            (4, "Transfer Kit", 20, -2, -2),
        ]
    )
    dev = await read(pool, rec, descr="HP ETHERNET MULTI-ENVIRONMENT,SN:X,PID:HP Color LaserJet 4500")
    assert dev.pmd == "hp-three-state"
    assert [(s.percent, s.state) for s in dev.supplies] == [
        (None, "low"),
        (None, "some_remaining"),
        (0.0, "empty"),
        (None, "unknown"),
    ]


async def test_canon_three_stage_levels_are_states_not_percents(pool: PmdPool) -> None:
    rec = supplies_rec(
        [(1, "Black Toner", 3, 100, 100), (2, "Black Toner", 3, 100, 10), (3, "Drum", 9, 100, 40)]
    )
    dev = await read(pool, rec, descr="Canon MF4750 /P")
    assert dev.pmd == "canon-three-stage"
    assert [(s.percent, s.state) for s in dev.supplies] == [
        (None, "some_remaining"),
        (None, "low"),
        (40.0, "ok"),
    ]


async def test_waste_receptacle_percent_is_space_left(pool: PmdPool) -> None:
    dev = await read(pool, supplies_rec([(1, "Waste Toner Container", 4, 100, 5)]))
    assert (dev.supplies[0].kind, dev.supplies[0].percent, dev.supplies[0].state) == (
        "waste_toner",
        5.0,
        "low",
    )


async def test_colour_comes_from_the_colorant_table_before_the_description(pool: PmdPool) -> None:
    rec = (
        supplies_rec([(1, "Toner 1", 3, 100, 80), (2, "Light Cyan Ink", 5, 100, 30)])
        + "\n"
        + "\n".join([f"{SUPPLY}.3.1.1|2|1", "1.3.6.1.2.1.43.12.1.1.4.1.1|4|magenta"])
    )
    dev = await read(pool, rec)
    assert [s.color for s in dev.supplies] == ["magenta", "light_cyan"]
    assert dev.capabilities.color is True


async def test_colorant_value_beats_a_colour_word_in_the_description(pool: PmdPool) -> None:
    # a cartridge named after the wrong colour (a relabelled or third-party part): the
    # colorant table the supply points at is what the device marks with
    rec = (
        supplies_rec([(1, "Black Toner (compatible)", 3, 100, 60)])
        + "\n"
        + "\n".join(
            [
                f"{SUPPLY}.3.1.1|2|2",
                "1.3.6.1.2.1.43.12.1.1.4.1.1|4|black",
                "1.3.6.1.2.1.43.12.1.1.4.1.2|4|cyan",
            ]
        )
    )
    dev = await read(pool, rec)
    assert dev.supplies[0].color == "cyan"


@pytest.mark.parametrize(
    "tag, value",
    [
        ("4x", "Cyan Toner".encode("utf-16-be").hex()),
        ("4x", "Cyan Toner".encode("utf-16-le").hex()),
        ("4x", (b"Cyan Toner\x00" + b"\xa5" * 8).hex()),
        ("4", "43 79 61 6E 20 54 6F 6E 65 72"),
    ],
)
async def test_supply_descriptions_are_decoded_whatever_the_agent_sends(
    pool: PmdPool, tag: str, value: str
) -> None:
    rec = "\n".join(
        [
            f"{SUPPLY}.5.1.1|2|3",
            f"{SUPPLY}.6.1.1|{tag}|{value}",
            f"{SUPPLY}.8.1.1|2|100",
            f"{SUPPLY}.9.1.1|2|40",
        ]
    )
    dev = await read(pool, rec)
    assert (dev.supplies[0].description, dev.supplies[0].color) == ("Cyan Toner", "cyan")


async def test_japanese_supply_names_in_shift_jis(pool: PmdPool) -> None:
    name = "トナー(ブラック)".encode("shift_jis").hex()
    rec = "\n".join(
        [f"{SUPPLY}.5.1.1|2|3", f"{SUPPLY}.6.1.1|4x|{name}", f"{SUPPLY}.8.1.1|2|100", f"{SUPPLY}.9.1.1|2|40"]
    )
    dev = await read(pool, rec)
    assert dev.supplies[0].description == "トナー(ブラック)"


@pytest.mark.parametrize(
    "interfaces, mac",
    [
        # loopback without an address, then Ethernet
        ([(1, 24, ""), (2, 6, "00210b0a0b0f")], "00:21:0b:0a:0b:0f"),
        # Wi-Fi at a lower ifIndex than the wired port: the wired port is the device's MAC
        ([(1, 71, "a0481c000001"), (2, 6, "a0481c000002")], "a0:48:1c:00:00:02"),
        # an Ethernet port with a zero address is skipped
        ([(1, 6, "000000000000"), (3, 117, "a0481c000003")], "a0:48:1c:00:00:03"),
        # Wi-Fi only: its address, rather than none
        ([(1, 24, ""), (2, 71, "a0481c000004")], "a0:48:1c:00:00:04"),
    ],
)
async def test_mac_is_the_first_ethernet_interface_with_an_address(
    pool: PmdPool, interfaces: list[tuple[int, int, str]], mac: str
) -> None:
    rec = "\n".join(
        [f"1.3.6.1.2.1.2.2.1.3.{i}|2|{t}" for i, t, _ in interfaces]
        + [f"1.3.6.1.2.1.2.2.1.6.{i}|4x|{a}" for i, _, a in interfaces]
    )
    dev = await read(pool, rec)
    assert dev.mac == mac


async def test_error_state_bits_become_conditions_and_alerts(pool: PmdPool) -> None:
    rec = "\n".join(
        ["1.3.6.1.2.1.25.3.2.1.5.1|2|3", "1.3.6.1.2.1.25.3.5.1.1.1|2|3", "1.3.6.1.2.1.25.3.5.1.2.1|4x|2480"]
    )  # bits 2, 5, 8: lowToner, jammed, inputTrayMissing
    dev = await read(pool, rec)
    assert dev.status.device == "warning" and dev.status.printer == "idle"
    assert dev.status.conditions == ["low_toner", "jammed", "input_tray_missing"]
    assert [(a.code, a.severity) for a in dev.alerts] == [
        ("low_toner", "warning"),
        ("jammed", "critical"),
        ("input_tray_missing", "critical"),
    ]


async def test_alert_table_rows_are_read_with_names(pool: PmdPool) -> None:
    a = "1.3.6.1.2.1.43.18.1.1"
    rec = "\n".join(
        [
            f"{a}.2.1.7|2|4",
            f"{a}.3.1.7|2|4",
            f"{a}.4.1.7|2|11",
            f"{a}.5.1.7|2|2",
            f"{a}.6.1.7|2|-1",
            f"{a}.7.1.7|2|1104",
            f"{a}.8.1.7|4|Cyan toner low",
            f"{a}.9.1.7|67|1234",
            "1.3.6.1.2.1.25.3.5.1.2.1|4x|20",
        ]
    )
    dev = await read(pool, rec)
    (alert,) = dev.alerts
    assert (
        alert.code,
        alert.severity,
        alert.group,
        alert.group_index,
        alert.location,
        alert.description,
        alert.index,
        alert.training,
        alert.time_ticks,
    ) == (
        "marker_toner_almost_empty",
        "warning",
        "marker_supplies",
        2,
        None,
        "Cyan toner low",
        7,
        "trained",
        1234,
    )
    assert dev.sources["alerts"] == a


async def test_sources_name_the_oid_of_each_field(pool: PmdPool) -> None:
    rec = "\n".join(
        [
            "1.3.6.1.2.1.43.5.1.1.17.1|4|ABC123",
            "1.3.6.1.2.1.43.10.2.1.4.1.1|65|4242",
            "1.3.6.1.2.1.2.2.1.3.1|2|24",
            "1.3.6.1.2.1.2.2.1.3.2|2|6",
            "1.3.6.1.2.1.2.2.1.6.2|4x|0026735 4e26a".replace(" ", ""),
            "1.3.6.1.2.1.1.5.0|4|printer-7",
        ]
    )
    dev = await read(pool, rec)
    assert (dev.serial, dev.counters["total"], dev.mac, dev.hostname) == (
        "ABC123",
        4242,
        "00:26:73:54:e2:6a",
        "printer-7",
    )
    assert dev.sources["serial"] == "1.3.6.1.2.1.43.5.1.1.17.1"
    assert dev.sources["counters.total"] == "1.3.6.1.2.1.43.10.2.1.4.1.1"
    assert dev.sources["mac"] == "1.3.6.1.2.1.2.2.1.6.2"
    assert dev.reachability == "ok" and dev.warnings == []


async def test_brother_counter_block_is_read_by_record(pool: PmdPool) -> None:
    block = "00010400001e780101040000147e020104000009faff"  # printed, mono, colour
    dev = await read(pool, f"1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.10.0|4x|{block}", descr="Brother NC-8300w")
    assert (dev.pmd, dev.counters["total_black"], dev.counters["total_color"]) == ("brother", 0x147E, 0x9FA)


async def test_counters_are_taken_as_read_even_near_the_32_bit_wrap(pool: PmdPool) -> None:
    dev = await read(pool, "1.3.6.1.2.1.43.10.2.1.4.1.1|65|4294967295")
    assert dev.counters["total"] == 4294967295


async def test_garbage_values_are_dropped_with_warnings(pool: PmdPool) -> None:
    rec = "\n".join(
        [
            "1.3.6.1.2.1.1.5.0|4|" + "A" * 65536,  # a 64 KB sysName
            "1.3.6.1.2.1.43.10.2.1.4.1.1|4|lots",  # a counter that is text
            f"{SUPPLY}.6.1.1|4|Black Toner",
            f"{SUPPLY}.8.1.1|4|hundred",
            f"{SUPPLY}.9.1.1|2|40",
            "1.3.6.1.2.1.25.3.5.1.2.1|2|5",  # error state as an INTEGER
        ]
    )
    dev = await read(pool, rec)
    assert dev.hostname is None and "total" not in dev.counters
    assert (dev.supplies[0].max, dev.supplies[0].state) == (None, "unknown")
    text = "\n".join(dev.warnings)
    assert "65536-byte string" in text and "not a number" in text
    assert "max is octets" in text and "not an OCTET STRING" in text


async def test_a_counter_sent_as_digits_is_a_number(pool: PmdPool) -> None:
    dev = await read(pool, "1.3.6.1.2.1.43.10.2.1.4.1.1|4|12345")
    assert dev.counters["total"] == 12345


async def test_an_endless_table_is_cut_with_a_warning(pool: PmdPool) -> None:
    rec = "\n".join(f"1.3.6.1.2.1.43.8.2.1.2.1.{i}|2|4" for i in range(1, 400))
    dev = await read(pool, rec)
    assert dev.capabilities.trays == 256
    assert any("more than 256 rows" in w for w in dev.warnings)


class _StopsAnswering:
    """A recording that times out after ``answers`` requests (a device losing power mid-read)."""

    def __init__(self, rec: RecordingSource, answers: int) -> None:
        self.rec, self.left = rec, answers

    def _tick(self) -> None:
        if self.left <= 0:
            raise SnmpTimeout("no answer from 192.0.2.7:161 within 1.0 s x 2")
        self.left -= 1

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        self._tick()
        return await self.rec.get(oids)

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        self._tick()
        return await self.rec.walk(oid, max_rows=max_rows)


async def test_a_device_that_stops_answering_midway_is_partial(pool: PmdPool) -> None:
    rec = RecordingSource.from_text("1.3.6.1.2.1.1.1.0|4|Generic\n1.3.6.1.2.1.43.5.1.1.17.1|4|SER1\n")
    dev = await read_device(_StopsAnswering(rec, 2), pool, ip="192.0.2.7", now=NOW)
    assert dev.reachability == "partial"
    assert dev.serial == "SER1"
    assert any("stopped answering" in w for w in dev.warnings)


async def test_a_silent_device_is_unreachable(pool: PmdPool) -> None:
    dev = await read_device(_StopsAnswering(RecordingSource({}), 0), pool, ip="192.0.2.7", now=NOW)
    assert (dev.reachability, dev.ip, dev.pmd) == ("unreachable", "192.0.2.7", None)
    assert "no answer" in dev.warnings[0]


class _Garbles(_StopsAnswering):
    """A device whose walks of the alert table fail with a protocol error."""

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        if oid.startswith("1.3.6.1.2.1.43.18"):
            raise SnmpProtocolError("agent sent an unusable response to GETBULK")
        return await self.rec.walk(oid, max_rows=max_rows)


async def test_a_protocol_error_on_one_table_keeps_the_rest_of_the_reading(pool: PmdPool) -> None:
    rec = RecordingSource.from_text("1.3.6.1.2.1.1.1.0|4|Generic\n1.3.6.1.2.1.43.5.1.1.17.1|4|SER1\n")
    dev = await read_device(_Garbles(rec, 100), pool, ip="192.0.2.7", now=NOW)
    assert (dev.reachability, dev.serial) == ("ok", "SER1")
    assert any("walk of 1.3.6.1.2.1.43.18.1.1 failed" in w for w in dev.warnings)


async def test_vendor_records_fill_in_a_sentinel_level(pool: PmdPool) -> None:
    maint = "6f01040000177041010400002134ff"  # black toner 60.00 %, drum 84.68 %
    rec = supplies_rec([(1, "Black Toner Cartridge", 3, -2, -3), (2, "Drum Unit", 9, 25000, 17208)])
    dev = await read(
        pool, rec + f"\n1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.8.0|4x|{maint}", descr="Brother NC-6800h"
    )
    toner, drum = dev.supplies
    assert (toner.index, toner.description, toner.level, toner.max, toner.percent, toner.state) == (
        1,
        "Black Toner Cartridge",
        6000,
        10000,
        60.0,
        "ok",
    )
    assert dev.sources["supplies.1"] == "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.8.0"
    assert (drum.level, drum.max, drum.percent) == (17208, 25000, 68.8)  # the table's own percent stays
    assert len(dev.supplies) == 2


async def test_a_vendor_supply_without_a_table_row_is_added(pool: PmdPool) -> None:
    maint = "70010400000bb8ff"  # cyan 30.00 %
    dev = await read(pool, f"1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.8.0|4x|{maint}", descr="Brother NC-6800h")
    [cyan] = dev.supplies
    assert (cyan.index, cyan.kind, cyan.color, cyan.percent, cyan.state) == (
        None,
        "toner",
        "cyan",
        30.0,
        "ok",
    )


@pytest.mark.parametrize(
    "vendor_value, serial",
    [("X4PY123456", "X4PY123456"), ("EPSON WF-C5790 Series", "X4PYPRTMIB"), ("EPSON", "X4PYPRTMIB")],
)
async def test_epson_serial_oid_answering_a_name_falls_back_to_the_printer_mib(
    pool: PmdPool, vendor_value: str, serial: str
) -> None:
    rec = "\n".join(
        [
            "1.3.6.1.2.1.1.1.0|4|EPSON Built-in 10Base-T/100Base-TX Print Server",
            "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.1248.1.2.1.1",
            "1.3.6.1.2.1.43.5.1.1.17.1|4|X4PYPRTMIB",
            f"1.3.6.1.4.1.1248.1.2.2.1.1.1.5.1|4|{vendor_value}",
        ]
    )
    dev = await read_device(RecordingSource.from_text(rec), pool, ip="192.0.2.7", now=NOW)
    assert (dev.pmd, dev.serial) == ("epson", serial)


@pytest.mark.parametrize(
    ("descr", "sys_oid", "serial_oid", "expected"),
    [
        (
            "HP Color Laser MFP 178nw; V4.00.02.24 JUN-08-2020",
            "1.3.6.1.4.1.236.11.5.1",
            "1.3.6.1.4.1.236.11.5.1.1.1.4.0",
            ("hp", "HP", "VNC3R12345"),
        ),
        (
            "Dell Color Laser 3110cn; Net 11.40,ESS 200707111148,IOT 03.00.05",
            "1.3.6.1.4.1.253.8.62.1.10.2.3.1",
            "1.3.6.1.4.1.253.8.53.3.2.1.3.1",
            ("dell", "Dell", "DLX1234567"),
        ),
    ],
    ids=["hp-on-a-samsung-engine", "dell-on-a-xerox-engine"],
)
async def test_a_rebadged_engine_reads_the_engine_makers_serial(
    pool: PmdPool, descr: str, sys_oid: str, serial_oid: str, expected: tuple[str, str, str]
) -> None:
    rec = "\n".join(
        [f"1.3.6.1.2.1.1.1.0|4|{descr}", f"1.3.6.1.2.1.1.2.0|6|{sys_oid}", f"{serial_oid}|4|{expected[2]}"]
    )
    dev = await read_device(RecordingSource.from_text(rec), pool, ip="192.0.2.7", now=NOW)
    assert (dev.pmd, dev.manufacturer, dev.serial) == expected

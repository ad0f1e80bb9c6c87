"""Vendor page counters, read from small recordings written by hand from each vendor's MIB
(tests/client/fixtures/*.snmprec; the PMD comments cite the MIB objects)."""

from __future__ import annotations

from pathlib import Path

from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.reader import read_device
from fsm_client.snmp.source import RecordingSource
from fsm_protocol.schema import Device

FIXTURES = Path(__file__).parent / "fixtures"


async def read(pool: PmdPool, name: str) -> Device:
    return await read_device(RecordingSource.from_file(FIXTURES / f"{name}.snmprec"), pool, ip="192.0.2.9")


async def test_canon_counters_come_from_the_counter_id_table(pool: PmdPool) -> None:
    dev = await read(pool, "canon-ir-adv-counters")
    assert (dev.pmd, dev.manufacturer, dev.serial) == ("canon", "Canon", "2QF01234")
    assert dev.counters == {
        "total": 152340,  # 101 Total 1
        "total_black": 101230,  # 108 Total (Black 1), not the total
        "total_color": 51110,  # 122 + 123 Full Color + Single Color (Large + Small)
        "print_total": 92340,  # 301
        "copy_total": 60000,  # 201
        "scan": 18000,  # 501
        "duplex": 40210,  # 114 Total 1 (2-Sided)
    }
    assert dev.sources["counters.total"] == "1.3.6.1.4.1.1602.1.11.1.3.1.4.101"


async def test_canon_without_the_id_table_reads_counters_by_name(pool: PmdPool) -> None:
    dev = await read(pool, "canon-lbp-counter-names")
    assert dev.counters["total"] == 8400
    assert dev.counters["total_black"] == 6100
    assert dev.counters["print_total"] == 8400
    assert dev.sources["counters.total_black"] == "1.3.6.1.4.1.1602.1.11.2.1.1.3.2"


async def test_kyocera_function_and_colour_mode_counters(pool: PmdPool) -> None:
    dev = await read(pool, "kyocera-taskalfa-counters")
    assert (dev.pmd, dev.serial, dev.model) == ("kyocera", "W2X1234567", "TASKalfa 2552ci")
    assert dev.counters == {
        "total": 40000,  # KYOCERA-MIB kcprtMarkerServiceCount
        "total_black": 30000,  # KMCOMMON-MIB kmColorModeCounterItem, black & white
        "total_color": 10000,  # single colour + full colour
        "print_total": 25000,
        "print_black": 18000,
        "print_color": 7000,
        "copy_total": 14000,
        "copy_black": 11000,
        "copy_color": 2000,
        "fax": 1000,
    }


async def test_ricoh_counter_table_by_type_code(pool: PmdPool) -> None:
    dev = await read(pool, "ricoh-mp-counter-table")
    assert (dev.pmd, dev.serial) == ("ricoh", "E175M123456")
    assert dev.counters == {
        "total": 50000,
        "total_black": 32500,  # 201 + 301 + 401
        "total_color": 17500,  # 202 + 203 + 402 + 403 (this model has no colour fax rows)
        "copy_total": 20000,
        "copy_black": 12000,
        "copy_color": 8000,
        "fax": 500,
        "fax_sent": 400,
        "print_total": 29500,
        "print_black": 20000,
        "print_color": 9500,
        "scan": 2600,  # 873 colour + 874 B&W scans; 870 (all transmissions) is not added
    }


async def test_ricoh_mono_model_falls_back_to_the_shorter_sums(pool: PmdPool) -> None:
    text = (FIXTURES / "ricoh-mp-counter-table.snmprec").read_text()
    # drop the colour rows (4, 5, 10, 11) and the fax rows (6, 7), as on a mono printer without fax
    gone = {4, 5, 6, 7, 10, 11}
    kept = [
        ln
        for ln in text.splitlines()
        if not (".367.3.2.1.2.19.5.1." in ln and int(ln.split("|")[0].rsplit(".", 1)[1]) in gone)
    ]
    dev = await read_device(RecordingSource.from_text("\n".join(kept)), pool, ip="192.0.2.9")
    assert dev.counters["total_black"] == 32000  # 201 + 401
    assert "total_color" not in dev.counters
    assert "copy_color" not in dev.counters


async def test_xerox_lifetime_usage_details(pool: PmdPool) -> None:
    dev = await read(pool, "xerox-hrdevdetail-counters")
    assert (dev.pmd, dev.serial) == ("xerox", "3YB123456")
    assert dev.counters == {"total": 90000, "total_color": 30000, "total_black": 60000}


async def test_lexmark_private_page_counts_beside_the_printer_mib_total(pool: PmdPool) -> None:
    dev = await read(pool, "lexmark-pgcount")
    assert (dev.pmd, dev.serial, dev.model, dev.firmware) == (
        "lexmark",
        "7527A1234B5C6",
        "Lexmark CX725",
        "CXTPC.081.234",
    )
    assert dev.counters == {"total": 12000, "total_black": 7000, "total_color": 5000}
    assert dev.sources["counters.total"] == "1.3.6.1.2.1.43.10.2.1.4.1.1"
    # ifIndex 1 is the loopback (no address): the MAC is the first Ethernet interface's
    assert dev.mac == "00:21:0b:0a:0b:0f"


async def test_hp_status_prt_eng_counters(pool: PmdPool) -> None:
    dev = await read(pool, "hp-laserjet-status-prt-eng")
    assert (dev.pmd, dev.serial) == ("hp", "CNB1K2L3M4")  # PML string: 2-byte prefix dropped
    assert dev.counters == {"total": 30000, "total_black": 18000, "total_color": 12000, "duplex": 9000}


async def test_toshiba_function_by_colour_table(pool: PmdPool) -> None:
    dev = await read(pool, "toshiba-estudio-counters")
    assert (dev.pmd, dev.manufacturer, dev.model) == ("toshiba", "Toshiba", "e-STUDIO3515AC")
    assert dev.counters == {
        "total": 21000,  # prtMarkerLifeCount
        "total_black": 14500,
        "total_color": 6500,  # full + twin colour
        "print_total": 13000,
        "print_black": 9000,
        "print_color": 4000,
        "copy_total": 7500,
        "copy_black": 5000,
        "copy_color": 2500,
        "fax": 500,
    }


async def test_epson_black_and_colour_page_counts(pool: PmdPool) -> None:
    dev = await read(pool, "epson-page-counts")
    assert (dev.pmd, dev.manufacturer, dev.serial) == ("epson", "Epson", "X4PY012345")
    assert dev.counters == {"total": 81563, "total_black": 39797, "total_color": 41766}

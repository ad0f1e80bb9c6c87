"""Who made a device, as its badge says: rebadged engines whose agent answers as the engine
maker, and label printers whose sysDescr begins with a model number. Each case is a small
recording written from the vendor's MIB (the OIDs its PMD reads), served by snmpsim and
read with ``scan`` as a customer's network would be."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fsm_client.config import ClientConfig, SnmpSection
from fsm_client.pmd.authoring import enterprises
from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.reader import read_device
from fsm_client.scan import scan
from fsm_client.snmp.snmpsim import Snmpsim
from fsm_client.snmp.source import RecordingSource
from fsm_devtools.fixtures.snmp import community_credential

pytestmark = pytest.mark.snmp

SYS_DESCR, SYS_OBJECT_ID = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0"
HR_DEVICE_DESCR = "1.3.6.1.2.1.25.3.2.1.3.1"
KYOCERA_MODEL = "1.3.6.1.4.1.1347.43.5.1.1.1.1"  # kcprtGeneralModelName
KM_MODEL = "1.3.6.1.4.1.18334.1.1.1.1.6.2.1.0"
RICOH_MODEL = "1.3.6.1.4.1.367.3.2.1.1.1.1.0"  # ricohSysName
KYOCERA_DESCR = "KYOCERA Document Solutions Printing System"

#: name -> (sysDescr, sysObjectID, {model OID: model}, expected manufacturer)
CASES: dict[str, tuple[str, str, dict[str, str], str | None]] = {
    # rebadged engines whose agent answers as the engine maker
    "utax-as-kyocera": (
        KYOCERA_DESCR,
        "1.3.6.1.4.1.1347.41",
        {KYOCERA_MODEL: "UTAX 2506ci", HR_DEVICE_DESCR: "UTAX 2506ci"},
        "UTAX",
    ),
    "ta-as-kyocera": (KYOCERA_DESCR, "1.3.6.1.4.1.1347.41", {KYOCERA_MODEL: "TA 2506ci"}, "Triumph-Adler"),
    "copystar-as-kyocera": (
        KYOCERA_DESCR,
        "1.3.6.1.4.1.1347.41",
        {HR_DEVICE_DESCR: "Copystar CS 3253ci"},
        "Copystar",
    ),
    "develop-as-konica": (
        "KONICA MINOLTA ineo+ 258",
        "1.3.6.1.4.1.18334.1.2.1.2.1.50.2.2",
        {KM_MODEL: "ineo+ 258"},
        "Develop",
    ),
    "savin-as-ricoh": (
        "RICOH Network Printer C model",
        "1.3.6.1.4.1.367.1.1",
        {RICOH_MODEL: "SAVIN C3503"},
        "Savin",
    ),
    "lanier-as-ricoh": (
        "RICOH Network Printer C model",
        "1.3.6.1.4.1.367.1.1",
        {HR_DEVICE_DESCR: "LANIER MP C3501"},
        "Lanier",
    ),
    # the engine makers' own models keep their maker ("TASKalfa" is not "TA ...")
    "kyocera": (KYOCERA_DESCR, "1.3.6.1.4.1.1347.41", {KYOCERA_MODEL: "TASKalfa 2553ci"}, "Kyocera"),
    "konica": (
        "KONICA MINOLTA bizhub C250i",
        "1.3.6.1.4.1.18334.1.2.1.2.1.50.2.2",
        {KM_MODEL: "KONICA MINOLTA bizhub C250i"},
        "Konica Minolta",
    ),
    "ricoh": (
        "RICOH MP C3003 1.10 / RICOH Network Printer C model",
        "1.3.6.1.4.1.367.1.1",
        {RICOH_MODEL: "MP C3003"},
        "Ricoh",
    ),
    # label printers whose sysDescr begins with the model number
    "intermec-pm43": ("PM43 203dpi", "1.3.6.1.4.1.1963.1.1", {}, "Honeywell (Intermec)"),
    "hp-outside-jetdirect": ("T1200 PS", "1.3.6.1.4.1.11.1.1", {}, "HP"),
    "zebra-zt410": ("ZT410-203dpi ZPL", "1.3.6.1.4.1.10642.1.1", {}, "Zebra"),
    "brother-ql": ("QL-820NWB", "1.3.6.1.4.1.2435.2.3.9.1", {}, "Brother"),
    # a model number of an unregistered maker is no maker; a maker's name still is
    "unknown-model-number": ("XP-420B 203dpi", "1.3.6.1.4.1.99999.1", {}, None),
    "named-in-sysdescr": ("Sindoh N600 1.0", "1.3.6.1.4.1.99999.1", {}, "Sindoh"),
}


def recording(descr: str, sys_oid: str, models: dict[str, str]) -> str:
    lines = [f"{SYS_DESCR}|4|{descr}", f"{SYS_OBJECT_ID}|6|{sys_oid}"]
    lines += [f"{oid}|4|{model}" for oid, model in sorted(models.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def badges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    workdir = tmp_path_factory.mktemp("badges")
    paths: list[Path] = []
    for name, (descr, sys_oid, models, _) in CASES.items():
        path = workdir / f"{name}.snmprec"
        path.write_text(recording(descr, sys_oid, models))
        paths.append(path)
    sim = Snmpsim(recordings=paths)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.mark.parametrize("name", CASES)
async def test_the_badge_names_the_maker(badges: Snmpsim, pool: PmdPool, name: str) -> None:
    config = ClientConfig(snmp=SnmpSection(timeout=1.0, retries=1))
    [device] = await scan(
        [f"127.0.0.1:{badges.port}"],
        config=config,
        pool=pool,
        credentials=[community_credential(badges.community(name))],
    )
    assert device.reachability == "ok", device.warnings
    assert device.manufacturer == CASES[name][3], (device.pmd, device.model)


@pytest.mark.parametrize("number, maker", sorted(enterprises.MAKERS.items()))
async def test_every_registered_enterprise_names_its_maker_through_the_base_pmd(
    pool: PmdPool, number: int, maker: str
) -> None:
    rec = recording("1234 model", f"1.3.6.1.4.1.{number}.99.1", {})
    device = await read_device(RecordingSource.from_text(rec), pool, ip="192.0.2.1")
    # a vendor PMD may match the number first; either way the badge is the registered maker's
    assert device.manufacturer == maker or (device.pmd != "printer-mib" and device.manufacturer), device.pmd
    assert device.pmd != "printer-mib" or device.sources["manufacturer"] == SYS_OBJECT_ID


@pytest.mark.parametrize("oid", ["", "1.3.6.1.2.1.1", "1.3.6.1.4.1", "1.3.6.1.4.1.x", "2.16.840"])
def test_a_sys_object_id_outside_enterprises_has_no_maker(oid: str) -> None:
    assert enterprises.maker_of(oid) is None

"""Which PMD a device gets, from sysObjectID and sysDescr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsm_client.pmd.authoring.matcher import PmdPool

WALKS = Path(__file__).resolve().parents[3] / "shared" / "snmp-walks"


@pytest.mark.parametrize(
    "oid, descr, want",
    [
        ("1.3.6.1.4.1.11.2.3.9.1", "HP ETHERNET MULTI-ENVIRONMENT,SN:X", "hp"),
        # A JetDirect EX print server answers with a Kyocera sysObjectID: the sysDescr decides.
        ("1.3.6.1.4.1.1347.41", "HP ETHERNET MULTI-ENVIRONMENT,ROM J.sp.00,JETDIRECT EX", "hp"),
        ("1.3.6.1.4.1.1347.41", "KYOCERA Document Solutions Printing System", "kyocera"),
        ("1.3.6.1.4.1.1347.41", "UTAX_TA 2506ci", "utax"),
        ("1.3.6.1.4.1.1347.41", "Olivetti d-COPIA 4023MF", "olivetti"),
        ("1.3.6.1.4.1.367.1.1", "RICOH MP 3053 1.09 / RICOH Network Printer C model", "ricoh"),
        ("1.3.6.1.4.1.367.1.1", "LANIER MP C3501/LD635C 2.01 / LANIER Network Printer", "lanier"),
        ("1.3.6.1.4.1.367.1.1", "SAVIN C2525 / SAVIN Network Printer", "savin"),
        ("1.3.6.1.4.1.367.1.1", "NRG MP 2553 / NRG Network Printer", "nrg"),
        ("1.3.6.1.4.1.367.1.1", "Gestetner MPC2500/DSc525 1.71", "gestetner"),
        ("1.3.6.1.4.1.18334.1.2.1.2.1.50.2.2", "Develop ineo  280", "develop"),
        ("1.3.6.1.4.1.18334.1.1.1.2.1.181.2.4", "KONICA MINOLTA bizhub C250i", "konica-minolta"),
        ("1.3.6.1.4.1.297.1.11.93.1.35.34.7.1", "FUJI XEROX ApeosPort-VI C4471;ESS1.0.217", "fuji-xerox"),
        ("1.3.6.1.4.1.297.1.11.93.2.1.2.3.5", "FUJIFILM Apeos C7580", "fujifilm"),
        (None, "SHARP MX-2614N", "sharp"),
        (None, "Samsung CLX-3170 Series;V1.00.01.64", "samsung"),
        ("1.3.6.1.4.1.1129.2.3.58.2", "TOSHIBA e-STUDIO2505AC", "toshiba"),
        ("1.3.6.1.4.1.1129.1.2.1", "TOSHIBA TEC B-EV4", "toshiba-tec"),
        ("1.3.6.1.4.1.10642.1.1", "ZTC ZT410-203dpi ZPL", "zebra"),
        ("1.3.6.1.4.1.674.10898.100.2.1.1", "Dell Color Laser 3110cn", "dell"),
        ("1.3.6.1.4.1.674.10892.2", "Linux idrac", "printer-mib"),  # a Dell server is not a Dell printer
        ("1.3.6.1.4.1.1248.1.1.2.1.3", "EPSON 10/100/1000 Ethernet USB Ext. Scan Server", "epson-scanner"),
        ("1.3.6.1.4.1.99999.1", "Unknown Printer 9000", "printer-mib"),
        (None, None, "printer-mib"),
    ],
)
def test_match(pool: PmdPool, oid: str | None, descr: str | None, want: str) -> None:
    assert pool.match(oid, descr).id == want


def test_oid_prefix_matches_only_at_a_dot(pool: PmdPool) -> None:
    # 1.3.6.1.4.1.2435 is Brother; 1.3.6.1.4.1.24350 is not
    assert pool.match("1.3.6.1.4.1.24350.1", "x").id == "printer-mib"
    assert pool.match("1.3.6.1.4.1.2435.2.3.9.1", "x").id == "brother"


@pytest.mark.skipif(not WALKS.is_dir(), reason="../shared/snmp-walks is not beside the repository")
def test_every_walk_gets_a_pmd_of_its_vendor(pool: PmdPool) -> None:
    for d in sorted(WALKS.iterdir()):
        exp_file = d / "expected.json"
        if not exp_file.exists():
            continue
        exp = json.loads(exp_file.read_text())
        pmd = pool.match(exp["sysObjectID"], exp["sysDescr"])
        assert pmd.id != "printer-mib", d.name

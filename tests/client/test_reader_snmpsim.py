"""Reading the recorded printers through snmpsim with the live pysnmp session: one test per
PMD family present in the walks, SNMPv1 and v2c, concurrency, and the `scan` command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_client.cli import main
from fsm_client.config import ClientConfig, Credential, SnmpSection
from fsm_client.pmd.authoring.expectations import compare
from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.reader import device_json
from fsm_client.scan import scan
from fsm_client.snmp.snmpsim import Snmpsim, free_udp_port
from fsm_client.store import Store
from fsm_devtools.fixtures.snmp import community_credential

pytestmark = pytest.mark.snmp

#: One recording per PMD family the walks hold (the family is what the matcher must pick).
FAMILIES = {
    "brother-hl-5370dw": "brother",
    "canon-lbp6670": "canon",
    "develop-ineo-280": "develop",
    "epson-ds-860-scanner": "epson-scanner",
    "epson-wf-c5790ba": "epson",
    "fuji-xerox-apeosport-vi-c4471": "fuji-xerox",
    "fujifilm-apeos-c7580": "fujifilm",
    "gestetner-mpc2500": "gestetner",
    "hp-laserjet-mfp-m130nw": "hp",
    "konica-minolta-bizhub-c250i": "konica-minolta",
    "kyocera-fs-1028mfp": "kyocera",
    "lanier-mp-c3501": "lanier",
    "ricoh-aficio-mp-c3002": "ricoh",
    "samsung-m4080fx": "samsung",
    "sharp-mx-3570n": "sharp",
    "toshiba-e-studio2505ac": "toshiba",
    "toshiba-tec-b-sx5t": "toshiba-tec",
    "xerox-altalink-c8045": "xerox",
}


def config(**snmp: object) -> ClientConfig:
    return ClientConfig(snmp=SnmpSection(**{"timeout": 1.0, "retries": 1, **snmp}))  # type: ignore[arg-type]


@pytest.mark.parametrize("walk, family", sorted(FAMILIES.items()))
async def test_family_reads_as_expected_through_snmpsim(
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    snmp_walks_dir: Path,
    pool: PmdPool,
    walk: str,
    family: str,
) -> None:
    [dev] = await scan(
        [f"127.0.0.1:{snmpsim_walks.port}"], config=config(), pool=pool, credentials=[walk_credential(walk)]
    )
    assert (dev.reachability, dev.pmd) == ("ok", family)
    expected = json.loads((snmp_walks_dir / walk / "expected.json").read_text())
    assert [c for c in compare(expected, device_json(dev)) if not c.ok] == []


async def test_snmpv1_reads_the_same_values_as_v2c(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    target = [f"127.0.0.1:{snmpsim_walks.port}"]
    [v1] = await scan(
        target, config=config(), pool=pool, credentials=[walk_credential("sharp-mx-3570n", "1")]
    )
    [v2] = await scan(target, config=config(), pool=pool, credentials=[walk_credential("sharp-mx-3570n")])
    assert v1.reachability == "ok"
    assert (v1.serial, v1.counters, v1.supplies, v1.mac) == (v2.serial, v2.counters, v2.supplies, v2.mac)


async def test_many_devices_are_read_concurrently_each_once(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    hosts = [f"{ip}:{snmpsim_walks.port}" for ip in snmpsim_walks.endpoints]
    devices = await scan(
        hosts,
        config=config(concurrency=4),
        pool=pool,
        credentials=[walk_credential("konica-minolta-bizhub-c250i")],
    )
    assert [d.ip for d in devices] == [h.split(":")[0] for h in hosts]
    assert {(d.reachability, d.serial, d.counters["total"]) for d in devices} == {
        ("ok", "AA2M021115700", 33810)
    }


async def test_wrong_community_then_right_one(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    creds = [community_credential("no-such-recording", name="wrong"), walk_credential("canon-lbp6670")]
    [dev] = await scan(
        [f"127.0.0.1:{snmpsim_walks.port}"],
        config=config(timeout=0.5, retries=2),
        pool=pool,
        credentials=creds,
    )
    assert (dev.reachability, dev.serial) == ("ok", "MKRA012345")


async def test_a_silent_address_is_unreachable_not_missing(pool: PmdPool) -> None:
    port = free_udp_port()
    [dev] = await scan(
        [f"127.0.0.1:{port}"],
        config=config(timeout=0.2, retries=0),
        pool=pool,
        credentials=[community_credential("public")],
    )
    assert (dev.ip, dev.reachability) == ("127.0.0.1", "unreachable")
    assert dev.warnings


def test_scan_command_prints_json_and_stores_unless_told_not_to(
    snmpsim_walks: Snmpsim, tmp_path: Path
) -> None:
    args = [
        "--data-dir",
        str(tmp_path),
        "scan",
        f"127.0.0.1:{snmpsim_walks.port}",
        "--community",
        snmpsim_walks.community("hp-laserjet-mfp-m130nw"),
        "--json",
    ]
    r = CliRunner().invoke(main, [*args, "--no-store"])
    assert r.exit_code == 0, r.output
    [reading] = json.loads(r.stdout)
    assert (reading["manufacturer"], reading["serial"], reading["mac"]) == (
        "HP",
        "VNCRC48198",
        "14:cb:19:95:2e:a0",
    )
    assert reading["counters"]["scan"] == 1190 and reading["pmd"] == "hp"
    assert reading["sources"]["serial"] == "1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0"
    assert [s["index"] for s in reading["supplies"]] == [1, 5]
    assert not (tmp_path / "client.db").exists() and not list(tmp_path.glob("*.db"))

    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    with Store.in_data_dir(tmp_path) as store:
        [stored] = store.readings()
        assert stored.kind == "scan"


def test_scan_command_table_output(snmpsim_walks: Snmpsim, tmp_path: Path) -> None:
    r = CliRunner(env={"COLUMNS": "200"}).invoke(
        main,
        [
            "--data-dir",
            str(tmp_path),
            "scan",
            f"127.0.0.1:{snmpsim_walks.port}",
            "--community",
            snmpsim_walks.community("sharp-mx-3570n"),
            "--no-store",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "6509415X00" in r.stdout and "Sharp" in r.stdout


async def test_a_range_is_swept_and_only_answering_addresses_are_read(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    last = snmpsim_walks.endpoints[-1].rsplit(".", 1)[1]
    devices = await scan(
        [f"127.0.0.2-{int(last) + 5}"],  # five addresses past the simulator's are silent
        config=config(port=snmpsim_walks.port, timeout=0.5, retries=2),
        pool=pool,
        credentials=[
            community_credential("no-such-recording", name="wrong"),
            walk_credential("brother-hl-5370dw"),
        ],
    )
    assert sorted(d.ip for d in devices) == sorted(snmpsim_walks.endpoints[1:])
    assert {(d.reachability, d.pmd, d.serial) for d in devices} == {("ok", "brother", "B9J154306")}


async def test_excluded_addresses_are_neither_swept_nor_read(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    answering = snmpsim_walks.endpoints[1:]
    skipped = answering[0]
    last = answering[-1].rsplit(".", 1)[1]
    devices = await scan(
        [f"127.0.0.2-{last}", skipped],  # excluded whether it comes from a range or by name
        config=config(port=snmpsim_walks.port, timeout=0.5, retries=1),
        pool=pool,
        credentials=[walk_credential("brother-hl-5370dw")],
        exclude=[skipped],
    )
    assert sorted(d.ip for d in devices) == sorted(answering[1:])


def test_pmd_match_asks_a_live_device(snmpsim_walks: Snmpsim, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(tmp_path),
            "pmd",
            "match",
            f"127.0.0.1:{snmpsim_walks.port}",
            "--json",
            "--community",
            snmpsim_walks.community("lanier-mp-c3501"),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert (result["pmd"], result["chain"]) == ("lanier", ["lanier", "ricoh", "printer-mib"])
    assert [c["id"] for c in result["candidates"]] == ["lanier", "ricoh"]


async def test_a_host_name_is_resolved_and_the_address_reported(
    snmpsim_walks: Snmpsim, walk_credential: Callable[..., Credential], pool: PmdPool
) -> None:
    [dev] = await scan(
        [f"localhost:{snmpsim_walks.port}"],
        config=config(),
        pool=pool,
        credentials=[walk_credential("canon-lbp6670")],
    )
    assert (dev.ip, dev.reachability, dev.serial) == ("127.0.0.1", "ok", "MKRA012345")


async def test_a_name_that_does_not_resolve_is_unreachable_with_the_reason(pool: PmdPool) -> None:
    # a 64-character label fails IDNA encoding before any resolver query: no traffic leaves loopback
    name = "p" * 64
    [dev] = await scan([name], config=config(), pool=pool, credentials=[community_credential("public")])
    assert (dev.ip, dev.reachability) == (name, "unreachable")
    assert f"cannot resolve host name {name!r}" in dev.warnings[0]

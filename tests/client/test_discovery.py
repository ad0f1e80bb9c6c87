"""Discovery: target expansion (unicast only, exclusions) and the raw-UDP sweep against
snmpsim, a counting listener and the discover command."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_client.cli import main
from fsm_client.snmp import ber
from fsm_client.snmp.discovery import Found, SweepProgress, expand_targets, sweep
from fsm_client.snmp.snmpsim import Snmpsim
from fsm_devtools.fixtures.snmp import SIM_DEVICES, community_credential
from fsm_devtools.peers.hostile import HostileAgent
from fsm_protocol.errors import ConfigError

BROTHER = "brother-hl-5370dw"
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; Python does not export it
BROTHER_OID = "1.3.6.1.4.1.2435.2.3.9.1"


def addrs(*specs: str, exclude: tuple[str, ...] = ()) -> list[str]:
    return list(expand_targets(specs, exclude))


# -- targets ----------------------------------------------------------------------------------


def test_cidr_leaves_out_network_and_broadcast_addresses() -> None:
    assert addrs("10.1.2.0/29") == [f"10.1.2.{i}" for i in range(1, 7)]
    assert len(addrs("10.1.0.0/22")) == 1022


def test_slash_31_and_32_have_no_network_address() -> None:
    assert addrs("10.1.2.4/31") == ["10.1.2.4", "10.1.2.5"]
    assert addrs("10.1.2.4/32") == ["10.1.2.4"]


def test_dash_ranges_short_and_long_skip_likely_broadcasts() -> None:
    assert addrs("10.0.0.253-255") == ["10.0.0.253", "10.0.0.254"]
    assert addrs("10.0.0.254-10.0.1.2") == ["10.0.0.254", "10.0.1.1", "10.0.1.2"]


def test_exclusions_take_every_target_form() -> None:
    got = addrs("10.0.0.0/28", exclude=("10.0.0.2", "10.0.0.4-6", "10.0.0.8/30", "localhost"))
    assert got == ["10.0.0.1", "10.0.0.3", "10.0.0.7", "10.0.0.12", "10.0.0.13", "10.0.0.14"]


def test_host_names_resolve_and_repeats_are_dropped() -> None:
    assert addrs("localhost", "127.0.0.1", "127.0.0.0/30") == ["127.0.0.1", "127.0.0.2"]


def test_multicast_and_reserved_blocks_inside_a_range_are_skipped() -> None:
    got = addrs("223.255.255.254/31", "223.255.255.253-224.0.0.2", "0.255.255.254-1.0.0.1")
    assert got == ["223.255.255.254", "223.255.255.255", "223.255.255.253", "1.0.0.1"]


@pytest.mark.parametrize(
    "spec",
    [
        "224.0.0.1",
        "255.255.255.255",
        "239.1.2.3",
        "0.0.0.0",
        "224.0.0.0/30",
        "240.0.0.0/30",
        "255.255.255.255/32",
        "0.0.0.0/8",
        "10.0.0.255-255",
        "10.0.0.0-0",
    ],
)
def test_a_single_multicast_or_broadcast_target_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="unicast only"):
        addrs(spec)


@pytest.mark.parametrize(
    "spec", ["10.0.0.300", "10.0.0.5-2", "10.0.0.1-300", "10.0.0.0/33", "no such host.invalid", ""]
)
def test_malformed_targets_are_refused_quoting_the_value(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        addrs(spec)
    assert info.value.hint
    assert repr(spec) in info.value.message or not spec


def test_a_sweep_wider_than_a_slash_12_is_refused() -> None:
    with pytest.raises(ConfigError, match="more than"):
        addrs("10.0.0.0/8")


# -- sweeping ---------------------------------------------------------------------------------


@pytest.fixture
def counting_listener() -> Iterator[tuple[int, Counter[str], list[float]]]:
    """A UDP port on every 127/8 address that counts probes per address and answers none."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)  # to learn each probe's destination
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(0.1)
    counts: Counter[str] = Counter()
    times: list[float] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                data, ancillary, _, _ = sock.recvmsg(2048, 64)
            except OSError:
                continue
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: addr is the destination
            ip = socket.inet_ntoa(ancillary[0][2][8:12])
            ber.decode_message(data)  # every probe is well-formed BER
            counts[ip] += 1
            times.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], counts, times
    finally:
        stop.set()
        thread.join()
        sock.close()


async def test_a_silent_slash_22_is_probed_once_plus_retries_per_address_and_finds_nothing(
    counting_listener: tuple[int, Counter[str], list[float]],
) -> None:
    port, counts, _ = counting_listener
    progress: list[SweepProgress] = []
    started = time.monotonic()
    found = await sweep(
        ["127.2.0.0/22"],
        credentials=[community_credential("public")],
        port=port,
        timeout=0.3,
        retries=1,
        rate=0,
        progress=progress.append,
    )
    elapsed = time.monotonic() - started
    assert found == []
    time.sleep(0.2)
    assert len(counts) == 1022 and set(counts.values()) == {2}
    assert "127.2.0.0" not in counts and "127.2.3.255" not in counts  # network, broadcast
    assert elapsed < 3
    assert progress[-1].done == progress[-1].total == 1022


async def test_the_rate_limit_spreads_probes(
    counting_listener: tuple[int, Counter[str], list[float]],
) -> None:
    port, counts, times = counting_listener
    await sweep(
        ["127.3.0.1-200"],
        credentials=[community_credential("public")],
        port=port,
        timeout=0.1,
        retries=0,
        rate=500,
    )
    time.sleep(0.1)
    assert sum(counts.values()) == 200
    assert times[-1] - times[0] >= 0.3  # 200 probes at 500/s take 0.4 s (a 10 ms burst allowed)


async def test_sweep_finds_simulated_printers_with_the_first_credential_that_answers(
    snmpsim_walks: Snmpsim,
) -> None:
    creds = [
        community_credential("wrong", name="wrong"),
        community_credential(snmpsim_walks.community(BROTHER), "1", name="brother-v1"),
        community_credential(snmpsim_walks.community("hp-color-laserjet-m452nw"), name="hp"),
    ]
    found = await sweep(
        ["127.0.0.0/27"], credentials=creds, port=snmpsim_walks.port, timeout=0.3, retries=1, rate=0
    )
    assert [f.ip for f in found] == ["127.0.0.1"] + [f"127.0.0.{i}" for i in range(2, 2 + SIM_DEVICES)]
    assert {(f.credential, f.version, f.sys_object_id) for f in found} == {("brother-v1", "1", BROTHER_OID)}
    assert found[0].sys_descr.startswith("Brother NC-6800h")


async def test_credentials_are_tried_in_order_on_addresses_not_found_yet(
    snmpsim_walks: Snmpsim, hostile_agent: HostileAgent
) -> None:
    # the hostile agent on 127.0.0.20 answers "public" only; snmpsim answers recordings' names
    with HostileAgent(host="127.0.0.20", port=snmpsim_walks.port):
        creds = [
            community_credential(snmpsim_walks.community(BROTHER), name="sim"),
            community_credential("public", name="public"),
        ]
        found = await sweep(
            ["127.0.0.1-24"],
            credentials=creds,
            port=snmpsim_walks.port,
            timeout=0.3,
            retries=0,
            rate=0,
            exclude=["127.0.0.3-11"],
        )
    assert [(f.ip, f.credential) for f in found] == [
        ("127.0.0.1", "sim"),
        ("127.0.0.2", "sim"),
        ("127.0.0.20", "public"),
    ]


def test_discover_command_prints_json(snmpsim_walks: Snmpsim, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(tmp_path),
            "discover",
            "127.0.0.1-4",
            "--exclude",
            "127.0.0.3",
            "--community",
            "nope",
            "--community",
            snmpsim_walks.community(BROTHER),
            "--port",
            str(snmpsim_walks.port),
            "--timeout",
            "0.3",
            "--retries",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["ip"] for r in rows] == ["127.0.0.1", "127.0.0.2", "127.0.0.4"]
    assert rows[0]["credential"] == "--community #2" and rows[0]["sys_object_id"] == BROTHER_OID
    assert set(rows[0]) >= set(Found.__struct_fields__)


def test_discover_command_names_a_bad_range(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "discover", "10.0.0.9-3"])
    assert result.exit_code != 0
    assert "10.0.0.9-3" in result.output and "hint:" in result.output
